#!/usr/bin/python3
"""{{name}}: a gati native module in Python (docs/native.md).

hello: input any JSON value X; output {"message": "hello from Python", "input": X}
"""

from gati_sdk import Module

module = Module("{{name}}", "0.1.0")


@module.method
def hello(payload, ctx):
    return {"message": "hello from Python", "input": payload}


if __name__ == "__main__":
    module.serve()
