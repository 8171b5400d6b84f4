# JSON writer shared by the fixture scripts in this folder: full precision (sprintf "%.17g"),
# NA/NaN/Inf as null, ASCII strings (jsonlite's toJSON(digits = NA) stops at 15 digits).
# Sourced from the repository root: source(file.path("tests", "reference", "json_writer.R")).

esc_str <- function(s) {
  s <- iconv(enc2utf8(s), "UTF-8", "ASCII", sub = "?")
  s <- gsub("\\", "\\\\", s, fixed = TRUE)
  s <- gsub("\"", "\\\"", s, fixed = TRUE)
  s <- gsub("\n", "\\n", s, fixed = TRUE)
  s <- gsub("\r", "\\r", s, fixed = TRUE)
  s <- gsub("\t", "\\t", s, fixed = TRUE)
  s <- gsub("[[:cntrl:]]", " ", s)
  paste0("\"", s, "\"")
}
to_json <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x) && !inherits(x, "AsIs")) {
    if (!is.null(names(x))) {
      if (length(x) == 0) return("{}")
      return(paste0("{", paste0(esc_str(names(x)), ":", vapply(x, to_json, ""), collapse = ","), "}"))
    }
    return(paste0("[", paste0(vapply(x, to_json, ""), collapse = ","), "]"))
  }
  asis <- inherits(x, "AsIs")
  x <- unclass(x)
  if (is.factor(x)) x <- as.character(x)
  vals <- if (is.character(x)) ifelse(is.na(x), "null", esc_str(x))
          else if (is.logical(x)) ifelse(is.na(x), "null", ifelse(x, "true", "false"))
          else { x <- as.numeric(x); ifelse(is.finite(x), sprintf("%.17g", x), "null") }
  if (length(vals) == 1 && !asis) return(vals)
  paste0("[", paste0(vals, collapse = ","), "]")
}

# Write a fixture file: {"generator": ..., "<object>": ..., "<array>": [one element a line], ...}.
# objects: named list written whole on one line each; arrays: named list of lists of records.
write_fixture <- function(path, generator, arrays, objects = list()) {
  con <- file(path, open = "w", encoding = "UTF-8")
  on.exit(close(con))
  head <- c("{", paste0("\"generator\": ", to_json(generator), ","))
  for (nm in names(objects)) head <- c(head, paste0(esc_str(nm), ": ", to_json(objects[[nm]]), ","))
  writeLines(head, con)
  for (j in seq_along(arrays)) {
    items <- arrays[[j]]
    n <- length(items)
    writeLines(paste0(esc_str(names(arrays)[j]), ": ["), con)
    for (i in seq_len(n)) writeLines(paste0(to_json(items[[i]]), if (i < n) "," else ""), con)
    writeLines(if (j < length(arrays)) "]," else c("]", "}"), con)
  }
  invisible(path)
}
