// shortlink: a URL shortener as a native gati module, in Go.
//
// shorten {"url": "https://..."} checks the URL, derives a stable 7-character code from its
// SHA-256 and stores code -> url in the "links" kv store; resolve {"code": "..."} looks it up;
// preview {"url": ...} answers the code without storing anything.
// The store is the runtime's: the module reaches it only through the host service, whose
// socket (GATI_HOST_SOCKET) is its identity. Each host request presents the call token the
// call came with (CallContext.call_token): the runtime attributes the request to that call,
// and refuses a token whose call has ended. Start-up follows the gati handshake (protocol 2,
// gati_sdk/protocol/wire.py): serve the module service and grpc.health.v1 on
// GATI_MODULE_SOCKET, then print one line on stdout.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	hostv1 "gati.local/shortlink/gen/gati/host/v1"
	modulev1 "gati.local/shortlink/gen/gati/module/v1"
)

const (
	handshakeVersion = 2
	store            = "links"
	codeLength       = 7
	maxURLLength     = 2048
	alphabet         = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

type module struct {
	modulev1.UnimplementedModuleServiceServer
	host hostv1.HostServiceClient
}

// failure is an error the caller can act on; it travels as gati.module.v1.Error.
type failure struct{ err *modulev1.Error }

func (f failure) Error() string { return f.err.Message }

func fail(code, message, fix string) error {
	return failure{&modulev1.Error{Code: code, Message: message, Fix: fix}}
}

func (m *module) Call(ctx context.Context, req *modulev1.CallRequest) (*modulev1.CallResponse, error) {
	callToken := req.GetContext().GetCallToken()
	var result interface{}
	var err error
	switch req.Method {
	case "shorten":
		result, err = m.shorten(ctx, callToken, req.Payload)
	case "resolve":
		result, err = m.resolve(ctx, callToken, req.Payload)
	case "preview":
		result, err = preview(req.Payload)
	default:
		err = fail("method_not_found", fmt.Sprintf("shortlink has no method %q", req.Method), "call shorten, resolve or preview")
	}
	if f, ok := err.(failure); ok {
		return &modulev1.CallResponse{Outcome: &modulev1.CallResponse_Error{Error: f.err}}, nil
	}
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	return &modulev1.CallResponse{Outcome: &modulev1.CallResponse_Payload{Payload: payload}}, nil
}

func (m *module) Describe(context.Context, *modulev1.DescribeRequest) (*modulev1.DescribeResponse, error) {
	return &modulev1.DescribeResponse{Name: "shortlink", Version: "1.0.0", Kind: "native", Methods: []string{"preview", "resolve", "shorten"}}, nil
}

// checkedURL: the payload's URL, if it is an absolute http(s) URL of sane length.
func checkedURL(payload []byte) (string, error) {
	var in struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(payload, &in); err != nil || in.URL == "" {
		return "", fail("bad_payload", "needs {\"url\": \"https://...\"}", "")
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(in.URL) > maxURLLength {
		return "", fail("bad_payload", fmt.Sprintf("not an absolute http(s) URL of at most %d bytes: %.80q", maxURLLength, in.URL), "")
	}
	return in.URL, nil
}

// preview: the code a URL would get, without storing it.
func preview(payload []byte) (interface{}, error) {
	u, err := checkedURL(payload)
	if err != nil {
		return nil, err
	}
	return map[string]string{"code": shortCode(u), "url": u}, nil
}

func (m *module) shorten(ctx context.Context, callToken string, payload []byte) (interface{}, error) {
	u, err := checkedURL(payload)
	if err != nil {
		return nil, err
	}
	code := shortCode(u)
	reply, err := m.host.KvPut(ctx, &hostv1.KvPutRequest{CallToken: callToken, Store: store, Key: code, Value: []byte(u)})
	if err != nil {
		return nil, err
	}
	if reply.Error != nil {
		return nil, failure{reply.Error} // e.g. capability_denied, naming the grant
	}
	return map[string]string{"code": code, "url": u}, nil
}

func (m *module) resolve(ctx context.Context, callToken string, payload []byte) (interface{}, error) {
	var in struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(payload, &in); err != nil || len(in.Code) != codeLength || strings.Trim(in.Code, alphabet) != "" {
		return nil, fail("bad_payload", fmt.Sprintf("resolve needs {\"code\": \"...\"} of %d letters and digits", codeLength), "")
	}
	reply, err := m.host.KvGet(ctx, &hostv1.KvGetRequest{CallToken: callToken, Store: store, Key: in.Code})
	if err != nil {
		return nil, err
	}
	if reply.Error != nil {
		return nil, failure{reply.Error}
	}
	if !reply.Found {
		err := fail("module_error", fmt.Sprintf("no link %s", in.Code), "shorten the URL first")
		err.(failure).err.Details = map[string]string{"reason": "not_found"}
		return nil, err
	}
	return map[string]string{"code": in.Code, "url": string(reply.Value)}, nil
}

// shortCode: base62 of the URL's SHA-256, so the same URL always gets the same code.
func shortCode(u string) string {
	sum := sha256.Sum256([]byte(u))
	n := new(big.Int).SetBytes(sum[:])
	base := big.NewInt(int64(len(alphabet)))
	mod := new(big.Int)
	out := make([]byte, codeLength)
	for i := range out {
		n.DivMod(n, base, mod)
		out[i] = alphabet[mod.Int64()]
	}
	return string(out)
}

func unixDialer(ctx context.Context, path string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "unix", path)
}

func main() {
	socket, hostSocket := os.Getenv("GATI_MODULE_SOCKET"), os.Getenv("GATI_HOST_SOCKET")
	if socket == "" || hostSocket == "" {
		fmt.Fprintln(os.Stderr, "shortlink: GATI_MODULE_SOCKET and GATI_HOST_SOCKET are not set; run me through the gati runtime")
		os.Exit(2)
	}
	conn, err := grpc.Dial(hostSocket, grpc.WithInsecure(), grpc.WithContextDialer(unixDialer))
	if err != nil {
		fmt.Fprintln(os.Stderr, "shortlink: host service:", err)
		os.Exit(1)
	}
	os.Remove(socket)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shortlink: listen:", err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	modulev1.RegisterModuleServiceServer(server, &module{host: hostv1.NewHostServiceClient(conn)})
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	go func() {
		if err := server.Serve(listener); err != nil {
			fmt.Fprintln(os.Stderr, "shortlink: serve:", err)
			os.Exit(1)
		}
	}()
	fmt.Printf("GATI|%d|unix|%s\n", handshakeVersion, socket) // stdout is unbuffered in Go
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.GracefulStop()
}
