# make_cluster_reference.R -- reference values of study-level (cluster) leave-one-out and
# cumulative meta-analysis for tests/test_cluster_sensitivity.py.
#
# Run from the repository root:   Rscript tests/reference/make_cluster_reference.R
# Output:                         tests/reference/cluster_reference.json
#
# metafor 3.8-1 has no leave1out(res, cluster=) (added in metafor 4.0), so each step is an
# rma() refit on the subset: leave-one-out drops every row of one cluster, cumulative adds
# every row of the next cluster (clusters ordered by their first row under `order`, ties in
# input order as R's stable order()). Deterministic: fixed data, no random numbers.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "cluster_reference.json")
METHODS <- c("REML", "DL")
TESTS <- c("z", "knha")
CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)

arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))

# BCG (log RR) with artificial clusters: 13 trials grouped into 8 "studies", 3 of them with
# 2 or 3 comparisons (not contiguous, so the first-row order matters).
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg_cluster <- c("A", "B", "C", "B", "D", "E", "C", "F", "G", "H", "C", "B", "A")
bcg_order <- dat.bcg$year

# generated multi-arm set: two 2-arm trials sharing a control (effects correlated only
# through the shared arm; the model treats rows as independent, as the report does) and
# four 1-comparison trials
gen_yi <- c(-0.42, -0.61, 0.10, -0.25, -0.05, -0.33, -0.80, 0.21)
gen_vi <- c(0.090, 0.110, 0.045, 0.060, 0.075, 0.052, 0.200, 0.130)
gen_cluster <- c("S1", "S1", "S2", "S3", "S3", "S4", "S5", "S6")
gen_order <- c(2019, 2019, 2008, 2021, 2021, 2012, 2015, 2008)

fit <- function(yi, vi, method, test) {
  res <- tryCatch(rma(yi, vi, method = method, test = test, control = CTRL),
                  error = function(e) NULL)
  if (is.null(res)) {
    return(list(k = length(yi), estimate = NA, se = NA, zval = NA, pvalue = NA, ci_low = NA,
                ci_high = NA, q = NA, q_pvalue = NA, tau2 = NA, i2 = NA, h2 = NA))
  }
  list(k = res$k, estimate = as.numeric(res$beta), se = res$se, zval = res$zval,
       pvalue = res$pval, ci_low = res$ci.lb, ci_high = res$ci.ub, q = res$QE,
       q_pvalue = res$QEp, tau2 = res$tau2, i2 = res$I2, h2 = res$H2)
}

collect <- function(steps) {
  names <- names(steps[[1]])
  out <- lapply(names, function(n) arr(vapply(steps, function(s) as.numeric(s[[n]]), 0)))
  names(out) <- names
  out
}

cases <- list()
add_case <- function(id, yi, vi, cluster, order, method, test) {
  ids <- unique(cluster)
  loo <- lapply(ids, function(c) { keep <- cluster != c; fit(yi[keep], vi[keep], method, test) })
  srt <- order(order)                      # stable
  steps <- unique(cluster[srt])            # clusters by first row under `order`
  cum <- lapply(seq_along(steps), function(j) {
    keep <- cluster %in% steps[seq_len(j)]
    fit(yi[keep], vi[keep], method, test)
  })
  full <- fit(yi, vi, method, test)
  cases[[length(cases) + 1]] <<- list(
    id = sprintf("%s/%s/%s", id, method, test),
    call = sprintf(paste0("rma(yi, vi, method='%s', test='%s', control=list(threshold=1e-12, ",
                          "maxiter=10000, tol=1e-12)) on each cluster subset"), method, test),
    input = list(yi = arr(yi), vi = arr(vi), cluster = chr(cluster), order = arr(order)),
    options = list(method = method, test = test),
    expected = list(full = full,
                    leave_one_out = c(list(study = chr(ids)), collect(loo)),
                    cumulative = c(list(study = chr(steps)), collect(cum))))
}

for (method in METHODS) for (test in TESTS) {
  add_case("bcg_clusters", bcg$yi, bcg$vi, bcg_cluster, bcg_order, method, test)
  add_case("generated_multiarm", gen_yi, gen_vi, gen_cluster, gen_order, method, test)
}

write_fixture(OUT, generator = paste0("tests/reference/make_cluster_reference.R; ",
                                      R.version.string, "; metafor ",
                                      as.character(packageVersion("metafor"))),
              arrays = list(cases = cases))
