"""An ``OpenSlideStore``'s tiles as a read-only zarr v3 store, for zarr tools
(``Slide.zarr_group``): every level is an array ``"<level>"`` of shape ``(rows, cols, 3)``,
uint8 RGB, one chunk per native tile, read through the store (its cache, its errors).

Kept apart from the store so that opening a slide does not import zarr (about 0.3 s of a
viewer's first frame).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from napari_cpadv.slide.pixels import TileKey


class ZarrView(Store):
    """The zarr v3 store over ``tiles`` (an ``OpenSlideStore``)."""

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = True

    def __init__(self, tiles: Any) -> None:
        super().__init__(read_only=True)
        self.tiles = tiles
        self._metadata = self._build_metadata()

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)

    def __str__(self) -> str:
        return f"openslide://{self.tiles.path}"

    def with_read_only(self, read_only: bool = False) -> ZarrView:
        if not read_only:
            raise ValueError(f"{self.tiles.path}: an OpenSlide store is read-only")
        return self

    def _build_metadata(self) -> dict[str, bytes]:
        meta: dict[str, bytes] = {}
        datasets = []
        for level, g in enumerate(self.tiles.geometry):
            datasets.append({"path": str(level), "downsample": g.downsample})
            meta[f"{level}/zarr.json"] = _json(
                {
                    "zarr_format": 3,
                    "node_type": "array",
                    "shape": [g.rows, g.cols, 3],
                    "data_type": "uint8",
                    "chunk_grid": {
                        "name": "regular",
                        "configuration": {"chunk_shape": [g.tile_rows, g.tile_cols, 3]},
                    },
                    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                    "fill_value": 0,
                    "codecs": [{"name": "bytes"}],
                    "dimension_names": ["y", "x", "c"],
                    "attributes": {"downsample": g.downsample},
                }
            )
        meta["zarr.json"] = _json(
            {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {"source": self.tiles.path, "levels": datasets},
            }
        )
        return meta

    def _parse_chunk_key(self, key: str) -> TileKey | None:
        parts = key.split("/")
        if len(parts) != 5 or parts[1] != "c" or parts[4] != "0":
            return None
        try:
            level, row, col = int(parts[0]), int(parts[2]), int(parts[3])
        except ValueError:
            return None
        if not 0 <= level < len(self.tiles.geometry):
            return None
        grid = self.tiles.geometry[level].grid
        if not (0 <= row < grid[0] and 0 <= col < grid[1]):
            return None
        return (level, row, col)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        prototype = prototype or default_buffer_prototype()
        if key in self._metadata:
            data = self._metadata[key]
        else:
            tile_key = self._parse_chunk_key(key)
            if tile_key is None:
                return None
            loop = asyncio.get_running_loop()
            tile = await loop.run_in_executor(self.tiles._executor, self.tiles.read_tile, *tile_key)
            data = tile.tobytes()
        if byte_range is not None:
            data = _slice_bytes(data, byte_range)
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        return key in self._metadata or self._parse_chunk_key(key) is not None

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError(f"{self.tiles.path}: an OpenSlide store is read-only")

    async def delete(self, key: str) -> None:
        raise PermissionError(f"{self.tiles.path}: an OpenSlide store is read-only")

    async def list(self) -> AsyncIterator[str]:
        for key in self._metadata:
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._metadata:
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        seen = set()
        for key in self._metadata:
            rest = (
                key
                if not prefix
                else key[len(prefix) + 1 :]
                if key.startswith(prefix + "/")
                else None
            )
            if rest is None:
                continue
            head = rest.split("/", 1)[0]
            if head not in seen:
                seen.add(head)
                yield head


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _slice_bytes(data: bytes, byte_range: ByteRequest) -> bytes:
    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :]
    raise TypeError(f"unexpected byte range {byte_range!r}")
