"""A tab's ForwardMsg cache (MessageCache): what it declares in a rerun, resolving ref_hash, ageing out entries.
Must not touch the page, the socket or timers: serialized messages in, hashes and parsed messages out."""

from __future__ import annotations

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


class MessageCache:
    """Like the frontend's ForwardMsgCache: cacheable messages by hash, each with the run count at its last use.

    The server (1.67 has no server-side message cache) replaces a cacheable message by a ``ref_hash``
    only when the rerun request listed its hash, so a hash listed here must resolve.
    """

    def __init__(self) -> None:
        self.max_age = 2  # NewSession.config.max_cached_message_age (Streamlit's default)
        self._entries: dict[str, list] = {}  # hash -> [encoded ForwardMsg, run count at last use, fragment id]
        self._runs = 0

    def hashes(self) -> list[str]:
        return list(self._entries)

    def remember(self, msg_hash: str, raw: bytes, fragment_id: str) -> None:
        """Keep a cacheable message (its first copy; a later one with the same hash changes nothing)."""
        if msg_hash not in self._entries:
            self._entries[msg_hash] = [raw, self._runs, fragment_id]

    def resolve(self, ref: ForwardMsg) -> ForwardMsg:
        """The cached message a ``ref_hash`` ForwardMsg stands for, with the reference's metadata."""
        entry = self._entries.get(ref.ref_hash)
        if entry is None:  # the frontend raises too: the server referred to a message we never declared
            raise KeyError(f"cached ForwardMsg miss for hash {ref.ref_hash}")
        entry[1] = self._runs  # a hit renews the entry, as getCachedMessage(hash, true) does
        msg = ForwardMsg()
        msg.ParseFromString(entry[0])
        msg.metadata.CopyFrom(ref.metadata)  # the reference carries this run's delta path
        return msg

    def age(self, fragments: tuple[str, ...]) -> None:
        """ForwardMsgCache.incrementRunCount: drop entries unused for more than max age runs; a fragment
        run only ages the entries of the fragments that ran."""
        self._runs += 1
        for h, (_, last_used, fragment) in list(self._entries.items()):
            if fragments and (not fragment or fragment not in fragments):
                continue
            if self._runs - last_used > self.max_age:
                del self._entries[h]
