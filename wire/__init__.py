"""collab.wire: the wire format both ends of the protocol share (pure code, no I/O).

``values`` (Convex-JSON values, u64 timestamps) and ``messages`` (the protocol's message
models). ``backend`` and ``backend_client`` both import it and neither imports the other, so the
two ends cannot drift apart on the encoding (docs/ARCHITECTURE.md).
"""

from collab.wire.values import (
    Int64,
    ValueError_,
    convex_to_json,
    decode_ts,
    dumps,
    encode_ts,
    json_to_convex,
    loads,
)

__all__ = [
    "Int64",
    "ValueError_",
    "convex_to_json",
    "decode_ts",
    "dumps",
    "encode_ts",
    "json_to_convex",
    "loads",
]
