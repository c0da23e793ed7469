"""Where final detections go: georeferenced frames, collected or streamed to a sink.

:class:`DetectionOutput` buffers final detections (scene pixels) per scene, turns them into
GeoDataFrames through the scene's affine transform, and writes them to a :class:`Sink`
every ``sink_rows`` rows (or keeps them for :meth:`DetectionOutput.frame`).
:func:`file_output` opens a vector file sink with its resume journal; the file appears
atomically on a clean exit.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.journal import DetectJournal, journal_dir
from fsanet_geo.geo.outputs.output_faults import write_faults
from fsanet_geo.geo.outputs.output_lock import output_lock

if TYPE_CHECKING:
    import geopandas
    from affine import Affine
    from rasterio.crs import CRS


class Sink(Protocol):
    """Where final detections go (see :func:`fsanet_geo.geo.outputs.export.open_sink`)."""

    def write(self, gdf: geopandas.GeoDataFrame) -> None: ...


class GeoScene(Protocol):
    """What georeferencing needs of a scene: its file name, pixel -> CRS transform and CRS."""

    @property
    def name(self) -> str: ...

    @property
    def transform(self) -> Affine: ...

    @property
    def crs(self) -> CRS | None: ...


class DetectionOutput:
    """Final detections of a run, georeferenced per scene, written to ``sink`` or collected.

    ``class_names`` name the labels; a label past them is called ``class_<label>``.
    """

    def __init__(
        self, scenes: Sequence[GeoScene], class_names: Sequence[str], sink: Sink | None = None, sink_rows: int = 10_000
    ) -> None:
        self.scenes = scenes
        self.class_names = list(class_names)
        self.sink = sink
        self.sink_rows = sink_rows
        self._buffer: list[tuple[int, Detections]] = []
        self._buffered = 0
        self._collected: list[geopandas.GeoDataFrame] = []
        self.crs: CRS | None = None  # of :meth:`frame` when the scenes' CRSs differ; None -> the first frame's

    def class_name(self, label: int) -> str:
        """The name of 0-based ``label``."""
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class_{label}"

    def add(self, index: int, dets: Detections) -> None:
        """Buffer final detections (scene pixels) of scene ``index``; write once ``sink_rows`` are in."""
        self._buffer.append((index, dets))
        self._buffered += len(dets)
        if self.sink is not None and self._buffered >= self.sink_rows:
            self.flush()

    def flush(self) -> None:
        """Georeference the buffered detections; write them to the sink, or keep them."""
        if not self._buffer:
            return
        by_scene: dict[int, list[Detections]] = {}
        for index, dets in self._buffer:
            by_scene.setdefault(index, []).append(dets)
        self._buffer, self._buffered = [], 0
        for index, parts in by_scene.items():
            gdf = self._to_frame(index, Detections.concat(parts))
            if self.sink is not None:
                self.sink.write(gdf)
            else:
                self._collected.append(gdf)

    def frame(self) -> geopandas.GeoDataFrame:
        """The collected detections (of a run without a sink) as one GeoDataFrame."""
        import pandas as pd

        if self._collected:
            crs = self.crs if self.crs is not None else self._collected[0].crs
            frames = [f if f.crs is None or f.crs == crs else f.to_crs(crs) for f in self._collected]
            if len(frames) == 1:
                return frames[0]
            return type(frames[0])(pd.concat(frames, ignore_index=True), crs=crs)
        return self._to_frame(0, Detections())

    def _to_frame(self, index: int, dets: Detections) -> geopandas.GeoDataFrame:
        from fsanet_geo.geo.outputs.georef import to_geodataframe

        top = int(dets.labels.max()) + 1 if len(dets) else 0
        names = [self.class_name(i) for i in range(max(top, len(self.class_names)))]
        scene = self.scenes[index]
        return to_geodataframe(dets, class_names=names, transform=scene.transform, crs=scene.crs, scene=scene.name)


@contextlib.contextmanager
def file_output(
    out: Path, crs: CRS | None, fingerprint: dict[str, Any], *, resume: bool, keep_crs: bool, overwrite: bool
) -> Iterator[tuple[DetectJournal, Sink]]:
    """A resume journal and a sink writing ``out`` (layer in ``crs``); the file appears on a clean exit.

    The sink is opened first (it checks the format, the folder and existing outputs), so a
    refused output leaves no journal behind. ``fingerprint`` identifies the run (scenes,
    settings) in the journal. On an exception the output is not written and the journal is
    kept for ``resume``, unless it was created here and holds no finished tile.
    """
    from fsanet_geo.geo.outputs.export import open_sink

    def kept() -> Path | None:
        folder = journal_dir(out)
        return folder if folder.is_dir() and not DetectJournal.holds_no_tiles(folder) else None

    with output_lock(out), write_faults(out, kept):  # one writer per output; failures name ``out``
        _remove_stale_temporaries(out)  # a killed run's; under the lock no live run owns any
        with open_sink(out, crs=crs, keep_crs=keep_crs, overwrite=overwrite) as sink:
            journal = DetectJournal(journal_dir(out), fingerprint, resume=resume)
            try:
                yield journal, sink
            except BaseException:
                if journal.created and journal.is_empty():
                    journal.remove()
                raise
        journal.remove()


def _remove_stale_temporaries(out: Path) -> None:
    """Remove the temporary output folders a killed run left beside ``out`` (``.<name>.*.tmp``)."""
    for stale in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):  # the name may hold [ ] * ?
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
