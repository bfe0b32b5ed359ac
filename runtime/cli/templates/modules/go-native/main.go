// {{name}}: a gati native module in Go (docs/native.md).
//
// hello: input any JSON value X; output {"message": "hello from Go", "input": X}
//
// Start-up follows the gati handshake: serve the module service and grpc.health.v1 on
// GATI_MODULE_SOCKET, then print one line on stdout.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	modulev1 "gati.local/{{name}}/gen/gati/module/v1"
)

type module struct {
	modulev1.UnimplementedModuleServiceServer
}

func fail(code, message string) *modulev1.CallResponse {
	return &modulev1.CallResponse{Outcome: &modulev1.CallResponse_Error{Error: &modulev1.Error{Code: code, Message: message}}}
}

func (m *module) Call(ctx context.Context, req *modulev1.CallRequest) (*modulev1.CallResponse, error) {
	if req.Method != "hello" {
		return fail("method_not_found", fmt.Sprintf("{{name}} has no method %q", req.Method)), nil
	}
	var input interface{}
	if len(req.Payload) > 0 {
		if err := json.Unmarshal(req.Payload, &input); err != nil {
			return fail("bad_payload", err.Error()), nil
		}
	}
	payload, err := json.Marshal(map[string]interface{}{"message": "hello from Go", "input": input})
	if err != nil {
		return nil, err
	}
	return &modulev1.CallResponse{Outcome: &modulev1.CallResponse_Payload{Payload: payload}}, nil
}

func main() {
	socket := os.Getenv("GATI_MODULE_SOCKET")
	if socket == "" {
		fmt.Fprintln(os.Stderr, "{{name}}: GATI_MODULE_SOCKET is not set; run me through the gati runtime")
		os.Exit(2)
	}
	os.Remove(socket)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "{{name}}: listen:", err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	modulev1.RegisterModuleServiceServer(server, &module{})
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	go func() {
		if err := server.Serve(listener); err != nil {
			fmt.Fprintln(os.Stderr, "{{name}}: serve:", err)
			os.Exit(1)
		}
	}()
	fmt.Printf("GATI|2|unix|%s\n", socket) // stdout is unbuffered in Go
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.GracefulStop()
}
