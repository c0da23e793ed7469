"""Write detections by file extension, atomically, whole or streamed chunk by chunk.

Formats (:data:`SUPPORTED_FORMATS`):

- ``.geojson``: RFC 7946, reprojected to WGS84 lon/lat (full precision, about 12
  decimals; counter-clockwise exterior rings; no "crs" member). With ``keep_crs=True`` the raster's CRS is kept
  instead and GDAL writes a ``"crs"`` member: valid for GDAL/QGIS, but not RFC 7946.
  Detections without a CRS stay in pixel coordinates (not RFC 7946 either).
- ``.gpkg``, ``.shp``, ``.fgb``: in the raster's CRS (the Shapefile is the set
  .shp .shx .dbf .prj .cpg).
- ``.csv``: the pixel boxes, class, score and scene, plus a ``WKT`` geometry column in
  the layer's CRS (GDAL reads it back as geometry; a CSV carries no CRS).
- ``.json``: COCO results in scene pixels: ``image_id`` (the ``image_id`` column when
  present, else the scene's 1-based order of first appearance), ``category_id`` =
  class_id + 1, ``bbox`` [x, y, w, h], ``score``.

Everything is written into a hidden temporary folder beside the output and moved into
place only on success; an existing output is never replaced without ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fsanet_geo.errors import FileOverwriteError, OutputError
from fsanet_geo.geo.outputs.sidecars import sidecar_paths, write_coco_images, write_csv_sidecars
from fsanet_geo.io_utils import check_output_path

if TYPE_CHECKING:
    import geopandas

SUPPORTED_FORMATS: dict[str, str] = {
    ".geojson": "GeoJSON (RFC 7946, WGS84 lon/lat; keep_crs keeps the raster CRS)",
    ".gpkg": "GeoPackage (raster CRS)",
    ".shp": "ESRI Shapefile (raster CRS)",
    ".fgb": "FlatGeobuf (raster CRS)",
    ".csv": "CSV: pixel boxes, class, score, scene and WKT geometry (raster CRS in .prj, types in .csvt)",
    ".json": "COCO results (pixels; image id -> scene in .images.json)",
}
_DRIVERS = {".geojson": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".fgb": "FlatGeobuf"}
SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".shp")  # .shp last: it appears when complete
_WGS84 = "EPSG:4326"


def output_format(path: str | os.PathLike[str]) -> str:
    """The lower-case extension of ``path`` if supported, else :class:`OutputError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        raise OutputError(
            f"unsupported output format {suffix or '(no extension)'!r} for {path}: "
            f"use one of {', '.join(SUPPORTED_FORMATS)}"
        )
    return suffix


def _output_files(target: Path, suffix: str) -> list[Path]:
    if suffix == ".shp":
        return [target.with_suffix(part) for part in SHAPEFILE_PARTS]
    return [*sidecar_paths(target, suffix), target]


def _supports_append(driver: str) -> bool:
    import pyogrio

    return "a" in pyogrio.list_drivers().get(driver, "")


class DetectionSink:
    """A detection layer written chunk by chunk into a temporary file, moved into place at close.

    Use :func:`open_sink`. ``write`` takes GeoDataFrames as made by
    :func:`fsanet_geo.geo.outputs.georef.to_geodataframe`; rows are buffered (``flush_rows``)
    and appended with pyogrio where the GDAL driver can append (GeoJSON, GPKG,
    Shapefile), else spilled to a temporary GeoPackage and converted at close
    (FlatGeobuf: GDAL cannot append to it, and the conversion holds all rows in memory). As a context manager, an exception aborts: no output, no temp file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        crs: Any,
        keep_crs: bool = False,
        overwrite: bool = False,
        layer: str | None = None,
        flush_rows: int = 50_000,
    ) -> None:
        self._suffix = output_format(path)
        self._target = Path(path)
        self._overwrite = overwrite
        self._check_target()
        self._crs = crs
        self._keep_crs = keep_crs
        self._layer = layer or self._target.stem
        self._flush_rows = flush_rows
        self._tmpdir = Path(
            tempfile.mkdtemp(prefix=f".{self._target.name}.", suffix=".tmp", dir=self._target.parent)
        )
        self._tmp = self._tmpdir / self._target.name
        self._buffer: list[geopandas.GeoDataFrame] = []
        self._buffered = 0
        self._written = 0
        self._count = 0
        self._scene_ids: dict[Any, int] = {}
        self._closed = False
        self._aborted = False
        self.layer_metadata: dict[str, str] = {}
        """Layer metadata written at close (GeoPackage and FlatGeobuf keep it; other formats do not)."""
        driver = _DRIVERS.get(self._suffix)
        self._driver = driver
        self._spill: Path | None = None
        if driver is not None and not _supports_append(driver):
            self._spill = self._tmpdir / "spill.gpkg"

    @property
    def path(self) -> Path:
        """The final output path."""
        return self._target

    @property
    def count(self) -> int:
        """Rows written so far."""
        return self._count

    def write(self, gdf: "geopandas.GeoDataFrame") -> None:
        """Append rows (empty frames are fine)."""
        if self._closed:
            raise OutputError(f"{self._target} is already closed")
        if len(gdf) == 0:
            return
        self._buffer.append(self._to_layer_crs(gdf))
        self._buffered += len(gdf)
        self._count += len(gdf)
        if self._buffered >= self._flush_rows:
            self._flush()

    def close(self) -> Path:
        """Finish the file and move it into place; returns the output path."""
        if self._aborted:
            raise OutputError(f"writing {self._target} was aborted")
        if self._closed:
            return self._target
        try:
            self._flush(final=True)
            self._finalise()
            self._check_target()
            self._move_into_place()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self._target

    def abort(self) -> None:
        """Drop everything written so far; the output is left as it was."""
        self._closed = self._aborted = True
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> "DetectionSink":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals -------------------------------------------------------------------

    def _check_target(self) -> None:
        check_output_path(self._target, overwrite=self._overwrite)
        if not self._overwrite:
            for part in _output_files(self._target, self._suffix):
                if part.exists():
                    raise FileOverwriteError(f"{part} already exists (use --overwrite to replace it)")

    def _to_layer_crs(self, gdf: "geopandas.GeoDataFrame") -> "geopandas.GeoDataFrame":
        crs = self._crs
        if crs is not None:
            gdf = gdf.set_crs(crs) if gdf.crs is None else gdf.to_crs(crs)
        if self._suffix == ".geojson" and not self._keep_crs and gdf.crs is not None:
            gdf = gdf.to_crs(_WGS84)
        return gdf

    def _flush(self, final: bool = False) -> None:
        import pandas

        if not self._buffer and not (final and self._written == 0):
            return
        if self._buffer:
            chunk = pandas.concat(self._buffer, ignore_index=True)
        else:
            from fsanet_geo.geo.outputs.georef import empty_geodataframe

            chunk = self._to_layer_crs(empty_geodataframe(self._crs))
        self._buffer, self._buffered = [], 0
        if self._suffix == ".csv":
            self._write_csv(chunk)
        elif self._suffix == ".json":
            self._write_coco(chunk)
        else:
            self._write_vector(chunk)
        self._written += len(chunk)

    def _write_vector(self, chunk: "geopandas.GeoDataFrame") -> None:
        import pyogrio

        dest = self._spill or self._tmp
        driver = "GPKG" if self._spill else self._driver
        append = dest.exists()
        options: dict[str, Any] = {}
        if driver == "GPKG" and not append:  # 1.2: read without a warning by every GDAL >= 2 (Debian's too)
            options["dataset_options"] = {"VERSION": "1.2"}
        if driver == "GeoJSON" and not append and chunk.crs is not None and not self._keep_crs:
            # Later appends are written with GDAL's default 15 significant digits: keep the
            # first chunk as precise (RFC7946 alone would round it to 7 decimals).
            options["layer_options"] = {"RFC7946": "YES", "COORDINATE_PRECISION": "12"}
        layer = None if driver == "ESRI Shapefile" else self._layer
        with warnings.catch_warnings():
            # pixel-coordinate outputs are intended; the reader already warned about them
            warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
            pyogrio.write_dataframe(
                chunk, dest, layer=layer, driver=driver, append=append, geometry_type="Polygon", **options
            )

    def _write_csv(self, chunk: "geopandas.GeoDataFrame") -> None:
        import shapely

        table = chunk.drop(columns=chunk.geometry.name)
        table["WKT"] = shapely.to_wkt(chunk.geometry.values, rounding_precision=-1)
        first = not self._tmp.exists()
        table.to_csv(self._tmp, mode="w" if first else "a", header=first, index=False)
        if first:
            write_csv_sidecars(self._tmp, dict(table.dtypes), chunk.crs)

    def _write_coco(self, chunk: "geopandas.GeoDataFrame") -> None:
        if "image_id" in chunk.columns:
            image_ids = [int(i) for i in chunk["image_id"]]
        else:
            image_ids = [self._scene_ids.setdefault(s, len(self._scene_ids) + 1) for s in chunk["scene"]]
        records = [
            {
                "image_id": image_id,
                "category_id": int(c) + 1,
                "bbox": [float(x0), float(y0), float(x1) - float(x0), float(y1) - float(y0)],
                "score": float(s),
            }
            for image_id, c, s, x0, y0, x1, y1 in zip(
                image_ids,
                *(chunk[k] for k in ("class_id", "score", "x_min", "y_min", "x_max", "y_max")),
            )
        ]
        first = not self._tmp.exists()
        with open(self._tmp, "a", encoding="utf-8") as f:
            for i, record in enumerate(records):
                f.write(("[\n" if first and i == 0 else ",\n") + json.dumps(record))

    def _finalise(self) -> None:
        if self._suffix == ".json":
            with open(self._tmp, "a", encoding="utf-8") as f:
                f.write("\n]\n" if self._written else "[]\n")
            write_coco_images(self._tmp, self._scene_ids)
        elif self._spill is not None:
            import pyogrio

            gdf = pyogrio.read_dataframe(self._spill, layer=self._layer)
            pyogrio.write_dataframe(
                gdf, self._tmp, layer=self._layer, driver=self._driver, geometry_type="Polygon",
                layer_metadata=self.layer_metadata or None,
            )
            self._spill.unlink()
        elif self.layer_metadata and self._driver == "GPKG":
            import pyogrio

            from fsanet_geo.geo.outputs.georef import empty_geodataframe

            pyogrio.write_dataframe(self._to_layer_crs(empty_geodataframe(self._crs)), self._tmp, layer=self._layer,
                                    driver="GPKG", append=True, geometry_type="Polygon",
                                    layer_metadata=self.layer_metadata)

    def _move_into_place(self) -> None:
        for part in _output_files(self._target, self._suffix):
            made = self._tmpdir / part.name
            if made.exists():
                os.replace(made, part)
            elif part.exists():
                part.unlink()  # a side file of the replaced dataset that the new one lacks
        shutil.rmtree(self._tmpdir, ignore_errors=True)


def open_sink(
    path: str | os.PathLike[str],
    *,
    crs: Any,
    keep_crs: bool = False,
    overwrite: bool = False,
    layer: str | None = None,
) -> DetectionSink:
    """Open a streaming detection writer for ``path`` (format by extension).

    ``crs``: the layer CRS (the raster's; None for pixel coordinates). Chunks in another
    CRS are reprojected to it. Fails at once, before any work, on an unsupported
    extension, a missing folder or an existing output without ``overwrite``.
    """
    return DetectionSink(path, crs=crs, keep_crs=keep_crs, overwrite=overwrite, layer=layer)


def write_detections(
    gdf: "geopandas.GeoDataFrame",
    path: str | os.PathLike[str],
    *,
    keep_crs: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a detection GeoDataFrame to ``path`` (format by extension), atomically.

    ``.geojson`` is reprojected to WGS84 unless ``keep_crs``; other vector formats keep
    ``gdf.crs``. Returns the path written.
    """
    with open_sink(path, crs=gdf.crs, keep_crs=keep_crs, overwrite=overwrite) as sink:
        sink.write(gdf)
    return sink.path
