"""Message trees published as flat rows (OpenAssistant oasst1/oasst2: one message per row, linked by parent_id)
rebuilt into conversations: one per tree, following the best-ranked reply at every branch.

A tree's root is a prompter message with no parent.  At each message the next turn is its child with the lowest
`rank` (0 is the best reply the annotators chose; unranked children come after ranked ones, in file order).
Deleted messages and messages that failed review are never used.  The walk stops at a leaf; a trailing
unanswered prompter turn is dropped by the messages converter like any cut-off conversation.
"""

from __future__ import annotations

COLUMNS = ("message_id", "parent_id", "role", "text")
ROLES = {"prompter": "user", "assistant": "assistant", "user": "user", "system": "system"}
_EXTRA = ("rank", "deleted", "review_result", "lang", "message_tree_id")


def detect(columns: list[str]) -> bool:
    return all(c in columns for c in COLUMNS)


def _usable(row: dict) -> bool:
    return not row.get("deleted") and row.get("review_result") is not False


def _best(children: list[dict]) -> dict | None:
    """The child to follow: lowest rank first, unranked after, then file order (the list is in file order)."""
    ranked = sorted(enumerate(children), key=lambda p: (p[1].get("rank") is None, p[1].get("rank") or 0, p[0]))
    return ranked[0][1] if ranked else None


def rebuild(dataset):
    """A datasets.Dataset of flat message rows -> a Dataset with one `messages` conversation per tree (plus
    `message_tree_id` and `lang` of the root, and `messages_in_tree`: how many usable messages the tree had)."""
    from datasets import Dataset

    wanted = [c for c in (*COLUMNS, *_EXTRA) if c in dataset.column_names]
    rows = dataset.select_columns(wanted).to_list()
    children: dict[str, list[dict]] = {}
    roots, counts = [], {}
    by_id = {r["message_id"]: r for r in rows if _usable(r)}
    for row in rows:
        if not _usable(row):
            continue
        if row.get("parent_id") in (None, ""):
            roots.append(row)
        elif row["parent_id"] in by_id:
            children.setdefault(row["parent_id"], []).append(row)
    out = []
    for root in roots:
        path, node, seen = [], root, set()
        while node is not None and node["message_id"] not in seen:
            seen.add(node["message_id"])
            path.append({"role": ROLES.get(node.get("role"), node.get("role")), "content": node.get("text") or ""})
            node = _best(children.get(node["message_id"], []))
        counts[root["message_id"]] = _tree_size(root["message_id"], children)
        out.append(
            {
                "messages": path,
                "message_tree_id": str(root.get("message_tree_id") or root["message_id"]),
                "lang": root.get("lang"),
                "messages_in_tree": counts[root["message_id"]],
            }
        )
    return Dataset.from_list(out) if out else Dataset.from_dict({"messages": [], "message_tree_id": []})


def _tree_size(root_id: str, children: dict[str, list[dict]]) -> int:
    stack, size = [root_id], 0
    while stack:
        size += 1
        stack += [c["message_id"] for c in children.get(stack.pop(), [])]
    return size
