# make_measures_reference.R -- escalc() yi, vi of the measures beyond OR/RR/RD/MD/SMD, and the
# back-transformations of pooled REML fits (threshold 1e-12), for tests/test_measures.py.
#
# Run from the repository root:   Rscript tests/reference/make_measures_reference.R
# Output:                         tests/reference/measures_reference.json
#
# Inputs: metafor's bundled data (metadat): dat.pritz1997 and dat.debruin2009 (proportions),
# dat.molloy2014 (correlations), dat.hart1999 (incidence rates), dat.curtis1998 (ROM),
# dat.bcg (AS), plus small hand-made vectors with zero cells, xi = ni, ni <= 3 and r = +-1.
# Every case stores its inputs, so the tests never need R. Deterministic (no random numbers).

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "measures_reference.json")
cases <- list()
warn_of <- character(0)

# One escalc() case: args are escalc's data arguments, opts its options (NULL = default).
add_case <- function(id, measure, args, opts = list()) {
  call_args <- c(list(measure = measure), args, opts)
  w <- character(0)
  es <- withCallingHandlers(do.call(escalc, call_args),
                            warning = function(cond) {
                              w <<- c(w, conditionMessage(cond)); invokeRestart("muffleWarning")
                            })
  shown <- paste(names(opts), vapply(opts, function(v) deparse(v), ""), sep = "=", collapse = ", ")
  cases[[length(cases) + 1]] <<- list(
    id = id, kind = "escalc", measure = measure,
    call = sprintf("escalc('%s', %s%s)", measure, paste(names(args), collapse = ", "),
                   if (length(opts)) paste0(", ", shown) else ""),
    input = lapply(args, function(v) I(as.numeric(v))),
    options = opts,
    expected = list(yi = I(as.numeric(es$yi)), vi = I(as.numeric(es$vi))),
    r_warnings = I(w))
}

TO <- c("only0", "all", "if0all", "none")

# -- proportions ------------------------------------------------------------------------------
pritz <- dat.pritz1997
debruin <- dat.debruin2009
zero_p <- list(xi = c(0, 3, 10, 20, 1), ni = c(20, 30, 40, 20, 15))   # xi = 0 and xi = ni
prop_data <- list(pritz1997 = list(xi = pritz$xi, ni = pritz$ni),
                  debruin2009 = list(xi = debruin$xi, ni = debruin$ni),
                  zero = zero_p)
prop_vtypes <- list(PR = c("LS", "UB", "AV"), PLN = c("LS", "AV"), PLO = c("LS", "AV"),
                    PAS = "LS", PFT = "LS")
for (dn in names(prop_data)) {
  for (m in names(prop_vtypes)) {
    for (vt in prop_vtypes[[m]]) add_case(paste(dn, m, vt, sep = "/"), m, prop_data[[dn]],
                                         list(vtype = vt))
    for (to in TO) {
      add_case(paste(dn, m, paste0("to_", to), sep = "/"), m, prop_data[[dn]], list(to = to))
      add_case(paste(dn, m, paste0("add0.5_to_", to), sep = "/"), m, prop_data[[dn]],
               list(add = 0.5, to = to))
    }
    add_case(paste(dn, m, "add0", sep = "/"), m, prop_data[[dn]], list(add = 0))
  }
}

# -- correlations -----------------------------------------------------------------------------
molloy <- dat.molloy2014
small_r <- list(ri = c(0.3, -0.2, 0.5, 1, -1, 0.1), ni = c(3, 10, 2, 40, 25, 4))
cor_data <- list(molloy2014 = list(ri = molloy$ri, ni = molloy$ni), small = small_r)
for (dn in names(cor_data)) {
  for (vt in c("LS", "AV")) add_case(paste(dn, "COR", vt, sep = "/"), "COR", cor_data[[dn]],
                                     list(vtype = vt))
  add_case(paste(dn, "ZCOR", "LS", sep = "/"), "ZCOR", cor_data[[dn]], list(vtype = "LS"))
}

# -- incidence rates --------------------------------------------------------------------------
hart <- dat.hart1999
zero_ir <- list(x1i = c(0, 4, 0, 7, 12), t1i = c(100, 250, 80, 300, 410),
                x2i = c(0, 2, 3, 0, 9), t2i = c(120, 240, 95, 280, 400))
ir_data <- list(hart1999 = list(x1i = hart$x1i, t1i = hart$t1i, x2i = hart$x2i, t2i = hart$t2i),
                zero = zero_ir)
for (dn in names(ir_data)) {
  for (m in c("IRR", "IRD", "IRSD")) {
    for (to in TO) {
      add_case(paste(dn, m, paste0("to_", to), sep = "/"), m, ir_data[[dn]], list(to = to))
      add_case(paste(dn, m, paste0("add0.5_to_", to), sep = "/"), m, ir_data[[dn]],
               list(add = 0.5, to = to))
    }
    add_case(paste(dn, m, "drop00", sep = "/"), m, ir_data[[dn]], list(drop00 = TRUE))
    add_case(paste(dn, m, "add1_drop00", sep = "/"), m, ir_data[[dn]],
             list(add = 1, to = "only0", drop00 = TRUE))
  }
}

# -- AS (arcsine risk difference) -------------------------------------------------------------
bcg <- dat.bcg
zero_b <- list(ai = c(0, 5, 0, 12), n1i = c(20, 30, 25, 12), ci = c(2, 0, 0, 10),
               n2i = c(22, 28, 25, 10))
as_data <- list(bcg = list(ai = bcg$tpos, n1i = bcg$tpos + bcg$tneg, ci = bcg$cpos,
                           n2i = bcg$cpos + bcg$cneg), zero = zero_b)
for (dn in names(as_data)) {
  add_case(paste(dn, "AS", "default", sep = "/"), "AS", as_data[[dn]])
  for (to in TO) add_case(paste(dn, "AS", paste0("add0.5_to_", to), sep = "/"), "AS",
                          as_data[[dn]], list(add = 0.5, to = to))
  add_case(paste(dn, "AS", "drop00", sep = "/"), "AS", as_data[[dn]],
           list(add = 0.5, drop00 = TRUE))
}

# -- ROM (log ratio of means) -----------------------------------------------------------------
curtis <- dat.curtis1998
rom_args <- list(m1i = curtis$m1i, sd1i = curtis$sd1i, n1i = curtis$n1i,
                 m2i = curtis$m2i, sd2i = curtis$sd2i, n2i = curtis$n2i)
for (vt in c("LS", "HO", "AV", "AVHO")) add_case(paste("curtis1998", "ROM", vt, sep = "/"), "ROM",
                                                rom_args, list(vtype = vt))
neg_rom <- list(m1i = c(10, -2, 5), sd1i = c(2, 1, 1), n1i = c(10, 12, 8),
                m2i = c(8, 4, 0), sd2i = c(2, 1, 1), n2i = c(11, 12, 9))
add_case("negative/ROM/LS", "ROM", neg_rom, list(vtype = "LS"))

# -- generic log hazard ratio from an estimate with its 95% CI (metafor 3.8-1 has no conv.wald:
#    the Cochrane Handbook 6.5.2.3 formula, computed here in R for the test) ----------------
hr <- c(0.75, 1.10, 0.52, 1.85)
lo <- c(0.60, 0.81, 0.30, 1.02)
hi <- c(0.94, 1.49, 0.90, 3.36)
hr_case <- list(id = "generic/HR/ci95", kind = "from_estimate", measure = "HR",
                call = "yi = log(hr); vi = ((log(hi) - log(lo)) / (2 * qnorm(0.975)))^2",
                input = list(estimate = I(hr), ci_low = I(lo), ci_high = I(hi)),
                options = list(level = 0.95),
                expected = list(yi = I(log(hr)), vi = I(((log(hi) - log(lo)) / (2 * qnorm(0.975)))^2)))
cases[[length(cases) + 1]] <- hr_case

# -- back-transformations of pooled REML fits -------------------------------------------------
transforms <- list()
add_transform <- function(id, es, transf_name, transf, targs = NULL, ni = NULL) {
  res <- rma(yi, vi, data = es, method = "REML", control = list(threshold = 1e-12, maxiter = 1000))
  p0 <- predict(res)
  p <- if (is.null(targs)) predict(res, transf = transf) else predict(res, transf = transf, targs = targs)
  transforms[[length(transforms) + 1]] <<- list(
    id = id, kind = "transform", measure = attr(es$yi, "measure"), transf = transf_name,
    input = list(yi = I(as.numeric(es$yi)), vi = I(as.numeric(es$vi)),
                 ni = if (is.null(ni)) NULL else I(as.numeric(ni))),
    fit = list(pred = p0$pred, ci.lb = p0$ci.lb, ci.ub = p0$ci.ub, pi.lb = p0$pi.lb,
               pi.ub = p0$pi.ub),
    expected = list(pred = p$pred, ci.lb = p$ci.lb, ci.ub = p$ci.ub, pi.lb = p$pi.lb,
                    pi.ub = p$pi.ub))
}
es <- escalc("PLO", xi = xi, ni = ni, data = pritz)
add_transform("pritz1997/PLO/ilogit", es, "transf.ilogit", transf.ilogit)
es <- escalc("PLN", xi = xi, ni = ni, data = pritz)
add_transform("pritz1997/PLN/exp", es, "exp", exp)
es <- escalc("PAS", xi = xi, ni = ni, data = debruin)
add_transform("debruin2009/PAS/iarcsin", es, "transf.iarcsin", transf.iarcsin)
es <- escalc("PFT", xi = xi, ni = ni, data = pritz)
add_transform("pritz1997/PFT/ipft.hm", es, "transf.ipft.hm", transf.ipft.hm,
              targs = list(ni = pritz$ni), ni = pritz$ni)
es <- escalc("PFT", xi = xi, ni = ni, data = debruin)
add_transform("debruin2009/PFT/ipft.hm", es, "transf.ipft.hm", transf.ipft.hm,
              targs = list(ni = debruin$ni), ni = debruin$ni)
es <- escalc("ZCOR", ri = ri, ni = ni, data = molloy)
add_transform("molloy2014/ZCOR/ztor", es, "transf.ztor", transf.ztor)
es <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = hart)
add_transform("hart1999/IRR/exp", es, "exp", exp)
es <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
             data = curtis)
add_transform("curtis1998/ROM/exp", es, "exp", exp)

# transf.ipft at each study's own n (study-level back-transformation) and at one given n
es <- escalc("PFT", xi = xi, ni = ni, data = pritz)
ipft_cases <- list(
  list(id = "pritz1997/PFT/ipft_own_n", kind = "ipft", values = I(as.numeric(es$yi)),
       ni = I(as.numeric(pritz$ni)), expected = I(transf.ipft(es$yi, pritz$ni))),
  list(id = "grid/PFT/ipft_n100", kind = "ipft", values = I(seq(-0.1, 1.7, by = 0.1)),
       ni = 100, expected = I(transf.ipft(seq(-0.1, 1.7, by = 0.1), 100))),
  list(id = "grid/PFT/ipft.hm", kind = "ipft_hm", values = I(seq(0, 1.5, by = 0.25)),
       ni = I(c(10, 20, 45, 100)),
       expected = I(transf.ipft.hm(seq(0, 1.5, by = 0.25), targs = list(ni = c(10, 20, 45, 100))))))

write_fixture(OUT, list(script = "tests/reference/make_measures_reference.R",
                        R = R.version.string, metafor = as.character(packageVersion("metafor"))),
              arrays = list(cases = cases, transforms = transforms, ipft = ipft_cases))
