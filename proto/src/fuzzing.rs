//! Entry points for the fuzz targets in `fuzz/`.
