# export_datasets_16.R -- eight more of metafor's data sets, for the measures and models of issue 16
# (notebooks/07_more_measures_and_models.ipynb) and tests/test_classic_datasets.py.
#
# Run from the repository root:   Rscript tests/reference/export_datasets_16.R
# Output:                         analysis/datasets/<name>.csv (the data, full precision)
#                                 tests/reference/datasets_16_reference.json (the R data)
#
# The data sets are metafor's dat.* (from the 'metadat' package, which metafor loads), one per
# new family: dat.pritz1997 (proportions), dat.molloy2014 (correlations), dat.hart1999
# (incidence rates), dat.curtis1998 (ratio of means), dat.nielweise2007 (rare events) and
# dat.senn2013 (a network of diabetes treatments, arm level), plus dat.konstantopoulos2011
# (schools within districts, multilevel) and dat.berkey1998 (two correlated outcomes per
# trial with their covariances v1i, v2i, multivariate) for rma.mv. Written by export_dataset() of
# dataset_csv.R exactly as make_classic_reference.R writes the classic six; the fixture holds
# each column as R has it (doubles with %.17g, NA -> null) so the test can compare every value.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))
source(file.path("tests", "reference", "dataset_csv.R"))

OUT <- file.path("tests", "reference", "datasets_16_reference.json")
CSV_DIR <- file.path("analysis", "datasets")

DATASETS <- list(pritz1997 = dat.pritz1997, molloy2014 = dat.molloy2014,
                 hart1999 = dat.hart1999, curtis1998 = dat.curtis1998,
                 nielweise2007 = dat.nielweise2007, senn2013 = dat.senn2013,
                 konstantopoulos2011 = dat.konstantopoulos2011,
                 berkey1998 = dat.berkey1998)

dataset_records <- lapply(names(DATASETS), function(nm) export_dataset(nm, DATASETS[[nm]],
                                                                         CSV_DIR))

generator <- list(
  script = "tests/reference/export_datasets_16.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  metadat = as.character(packageVersion("metadat")),
  note = paste0(
    "metafor's dat.pritz1997, dat.molloy2014, dat.hart1999, dat.curtis1998, ",
    "dat.nielweise2007, dat.senn2013, dat.konstantopoulos2011 and dat.berkey1998 ",
    "(data from metadat), column by column. ",
    "Doubles written with %.17g; NA -> null."))

write_fixture(OUT, generator, list(datasets = dataset_records, cases = list()))
message("wrote ", length(dataset_records), " data sets to ", CSV_DIR, " and ", OUT)
