"""The admin web interface at /admin/: server-rendered pages whose every read and write is a
use case, as the HTTP API's are."""
