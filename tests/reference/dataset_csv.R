# dataset_csv.R -- write one of metafor's dat.* data frames as a full-precision CSV for
# analysis/datasets/, and the fixture record the tests compare it with. Sourced by
# make_classic_reference.R and export_datasets_16.R.

# the shortest of 15, 16, 17 significant digits that reads back as the same double
fmt_double <- function(x) {
  vapply(x, function(v) {
    if (is.na(v)) return("")
    for (d in 15:17) { s <- sprintf(paste0("%.", d, "g"), v); if (as.numeric(s) == v) return(s) }
    s
  }, "")
}
csv_column <- function(x) {
  x <- unclass(x)
  attributes(x) <- NULL
  if (is.character(x)) return(ifelse(is.na(x), "", paste0("\"", gsub("\"", "\"\"", x), "\"")))
  if (is.integer(x)) return(ifelse(is.na(x), "", as.character(x)))
  fmt_double(x)
}
col_type <- function(x) if (is.character(x)) "string" else if (is.integer(x)) "integer" else "number"

# write <csv_dir>/<nm>.csv and return the record (name, r_name, n_rows, types, columns)
export_dataset <- function(nm, data, csv_dir) {
  d <- as.data.frame(data)
  cols <- lapply(d, csv_column)
  lines <- c(paste(names(d), collapse = ","), do.call(paste, c(cols, sep = ",")))
  con <- file(file.path(csv_dir, paste0(nm, ".csv")), open = "wb")
  writeLines(lines, con, sep = "\n")
  close(con)
  list(name = nm, r_name = paste0("dat.", nm), n_rows = nrow(d),
       types = lapply(d, col_type),
       columns = lapply(d, function(x) {
         x <- unclass(x); attributes(x) <- NULL
         if (is.character(x)) I(as.character(x)) else I(as.numeric(x))
       }))
}
