# make_influence_reference.R -- reference values of metafor's influence() for tests/test_influence.py.
#
# Run from the repository root:   Rscript tests/reference/make_influence_reference.R
# Output:                         tests/reference/influence_reference.json
#
# Every case is self-contained: the inputs at full precision (yi, vi, study labels and, for
# meta-regressions, the moderators), the options, the R call and every column of
# influence(res)$inf, influence(res)$dfbs and influence(res)$is.infl. Doubles are written with
# sprintf("%.17g") as in make_reference.R (jsonlite caps output at 15 significant digits).
# NA / NaN / +-Inf -> null.

suppressPackageStartupMessages(library(metafor))

OUT <- file.path("tests", "reference", "influence_reference.json")
METHODS <- c("REML", "DL", "FE", "ML")
TESTS <- c("z", "knha")
ITER <- c("REML", "ML")
CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)
CTRL_S <- ", control=list(threshold=1e-12, maxiter=10000, tol=1e-12)"

arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))

cases <- list()
add_case <- function(id, dataset, yi, vi, slab, method, test, mods = NULL, formula = NULL) {
  args <- list(yi = yi, vi = vi, method = method, test = test, slab = slab)
  if (!is.null(mods)) { args$mods <- formula; args$data <- mods }
  if (method %in% ITER) args$control <- CTRL
  res <- do.call(rma, args)
  inf <- influence(res)
  out <- lapply(as.list(as.data.frame(inf$inf)[c("rstudent", "dffits", "cook.d", "cov.r",
                                                  "tau2.del", "QE.del", "hat", "weight")]), arr)
  dfbs <- as.data.frame(inf$dfbs)[rownames(res$beta)]
  names(dfbs) <- paste0("dfbetas_", names(dfbs))
  out <- c(out, lapply(as.list(dfbs), arr))
  out$is.infl <- I(as.logical(inf$is.infl))
  out$tau2 <- res$tau2
  input <- list(yi = arr(yi), vi = arr(vi), study = chr(slab))
  if (!is.null(mods)) input$moderators <- lapply(as.list(mods), arr)
  call <- sprintf("influence(rma(yi, vi, %smethod='%s', test='%s'%s))",
                  if (is.null(formula)) "" else paste0("mods=", deparse(formula), ", "),
                  method, test, if (method %in% ITER) CTRL_S else "")
  cases[[length(cases) + 1]] <<- list(
    id = sprintf("%s/%s/%s", id, method, test), dataset = dataset, call = call, input = input,
    options = list(method = method, test = test, coef = chr(rownames(res$beta))),
    expected = out)
}

bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
norm <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
               data = dat.normand1999)
hack <- dat.hackshaw1998
set.seed(20261201)
k <- 15
gvi <- runif(k, 0.01, 0.1)
gyi <- rnorm(k, 0.3, sqrt(gvi + 0.02))
gyi[7] <- gyi[7] + 1.5   # the outlier

sets <- list(
  bcg = list(yi = bcg$yi, vi = bcg$vi, slab = paste(dat.bcg$author, dat.bcg$year)),
  normand1999 = list(yi = norm$yi, vi = norm$vi, slab = dat.normand1999$source),
  hackshaw1998 = list(yi = hack$yi, vi = hack$vi, slab = paste(hack$author, hack$year)),
  outlier = list(yi = gyi, vi = gvi, slab = as.character(seq_len(k))))
for (ds in names(sets)) {
  d <- sets[[ds]]
  for (m in METHODS) for (t in TESTS) add_case(ds, ds, d$yi, d$vi, d$slab, m, t)
}
mods <- data.frame(ablat = dat.bcg$ablat, year = dat.bcg$year)
for (t in TESTS) {
  add_case("bcg~ablat", "bcg", bcg$yi, bcg$vi, sets$bcg$slab, "REML", t,
           mods["ablat"], ~ ablat)
  add_case("bcg~ablat+year", "bcg", bcg$yi, bcg$vi, sets$bcg$slab, "REML", t,
           mods, ~ ablat + year)
}

source(file.path("tests", "reference", "json_writer.R"))

generator <- list(
  script = "tests/reference/make_influence_reference.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  note = paste0(
    "influence(rma(...)): control=list(threshold=1e-12, maxiter=10000, tol=1e-12) for REML/ML; ",
    "test 'knha' == our ci 'hksj'; expected holds every column of $inf, $dfbs (as dfbetas_<coef>) ",
    "and $is.infl; tau2 is the full model's. Doubles written with %.17g."))

write_fixture(OUT, generator, list(cases = cases))
n <- length(cases)
message("wrote ", n, " cases to ", OUT)
