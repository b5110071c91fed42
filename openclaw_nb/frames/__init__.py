"""Messages as pandas DataFrames: the one-row-per-message schema, live buffering, bulk ingest, logs on disk,
and the analysis helpers a notebook reaches for.

pandas (and pyarrow, when installed) are imported inside functions, so ``import openclaw_nb`` stays light.
Column order and the flattening rules live in :mod:`openclaw_nb.protocol.poll`; this module only gives the
columns their dtypes: ``message_id``/``quoted_svr_id`` ``UInt64`` (exact above 2^53, never float), times
``datetime64[ms, UTC]``, ``message_type``/``message_state`` categories of readable names, strings ``str``.

Rooms: :mod:`.schema` (columns and dtypes), :mod:`.buffer` (the live feed's buffer), :mod:`.ingest` (bulk
ingest), :mod:`.logfiles` (logs on disk), :mod:`.analysis` (items, redacted copies, analysis helpers).
"""

from .analysis import (
    ITEM_COLUMNS,
    Conversation,
    conversation,
    html_table,
    items_frame,
    messages_per_user,
    per_minute,
    redacted,
    reply_latency,
    timeline,
)
from .buffer import (
    MessageBuffer,
)
from .ingest import (
    frame_from_messages,
    frame_from_pages,
)
from .logfiles import (
    PARTITION_COLUMNS,
    read_log,
    save_log,
)
from .schema import (
    BOOL_COLUMNS,
    CATEGORY_NAMES,
    COLUMNS,
    INT64_COLUMNS,
    MAX_CHUNKS,
    STR_COLUMNS,
    TIME_COLUMNS,
    UINT64_COLUMNS,
    columns_to_frame,
    concat_frames,
    empty_frame,
)

