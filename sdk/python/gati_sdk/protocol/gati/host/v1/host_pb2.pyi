from gati_sdk.protocol.gati.module.v1 import module_pb2 as _module_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HttpRequestMessage(_message.Message):
    __slots__ = ("call_token", "method", "url", "headers", "body")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    method: str
    url: str
    headers: _containers.ScalarMap[str, str]
    body: bytes
    def __init__(self, call_token: _Optional[str] = ..., method: _Optional[str] = ..., url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ...) -> None: ...

class HttpResponseMessage(_message.Message):
    __slots__ = ("status", "headers", "body", "error")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: int
    headers: _containers.ScalarMap[str, str]
    body: bytes
    error: _module_pb2.Error
    def __init__(self, status: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ..., error: _Optional[_Union[_module_pb2.Error, _Mapping]] = ...) -> None: ...

class KvGetRequest(_message.Message):
    __slots__ = ("call_token", "store", "key")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    store: str
    key: str
    def __init__(self, call_token: _Optional[str] = ..., store: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class KvPutRequest(_message.Message):
    __slots__ = ("call_token", "store", "key", "value")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    store: str
    key: str
    value: bytes
    def __init__(self, call_token: _Optional[str] = ..., store: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class KvEntryResponse(_message.Message):
    __slots__ = ("found", "value", "revision", "error")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    revision: int
    error: _module_pb2.Error
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., revision: _Optional[int] = ..., error: _Optional[_Union[_module_pb2.Error, _Mapping]] = ...) -> None: ...

class KvCompareAndSetRequest(_message.Message):
    __slots__ = ("call_token", "store", "key", "value", "revision")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    store: str
    key: str
    value: bytes
    revision: int
    def __init__(self, call_token: _Optional[str] = ..., store: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ..., revision: _Optional[int] = ...) -> None: ...

class KvIncrementRequest(_message.Message):
    __slots__ = ("call_token", "store", "key", "delta")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    store: str
    key: str
    delta: int
    def __init__(self, call_token: _Optional[str] = ..., store: _Optional[str] = ..., key: _Optional[str] = ..., delta: _Optional[int] = ...) -> None: ...

class KvCounterResponse(_message.Message):
    __slots__ = ("value", "error")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    value: int
    error: _module_pb2.Error
    def __init__(self, value: _Optional[int] = ..., error: _Optional[_Union[_module_pb2.Error, _Mapping]] = ...) -> None: ...

class KvDeleteRequest(_message.Message):
    __slots__ = ("call_token", "store", "key", "revision")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    store: str
    key: str
    revision: int
    def __init__(self, call_token: _Optional[str] = ..., store: _Optional[str] = ..., key: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class NameRequest(_message.Message):
    __slots__ = ("call_token", "name")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    name: str
    def __init__(self, call_token: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class FileRequest(_message.Message):
    __slots__ = ("call_token", "path", "data")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    path: str
    data: bytes
    def __init__(self, call_token: _Optional[str] = ..., path: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ValueResponse(_message.Message):
    __slots__ = ("found", "value", "error")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    error: _module_pb2.Error
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., error: _Optional[_Union[_module_pb2.Error, _Mapping]] = ...) -> None: ...

class CallModuleRequest(_message.Message):
    __slots__ = ("call_token", "module", "method", "payload")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    module: str
    method: str
    payload: bytes
    def __init__(self, call_token: _Optional[str] = ..., module: _Optional[str] = ..., method: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class LogRequest(_message.Message):
    __slots__ = ("call_token", "level", "message")
    CALL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    call_token: str
    level: int
    message: str
    def __init__(self, call_token: _Optional[str] = ..., level: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
