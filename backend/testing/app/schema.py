from collab.backend.schema import define_schema, define_table
from collab.backend.validators import v

schema = define_schema(
    {
        "counters": define_table({"name": v.string(), "value": v.number()}).index("by_name", ["name"]),
        "messages": define_table({"channel": v.string(), "body": v.string(), "author": v.optional(v.string())})
        .index("by_channel", ["channel"]),
        "items": define_table({"group": v.string(), "rank": v.number(), "label": v.string()})
        .index("by_group_rank", ["group", "rank"]),
    }
)
