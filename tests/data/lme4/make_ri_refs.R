# lme4 reference numbers for the random-intercept models y ~ x + (1 | g) and
# y ~ 1 + (1 | g), on the article's six scenarios, on lme4's sleepstudy, and the
# printed summaries of both models on the four R data sets in tests/data/real.
# A data generator, not a dependency: the tests read only the files it writes.
#
# usage (from anywhere):  Rscript tests/data/lme4/make_ri_refs.R
# needs: R with lme4 and jsonlite (Debian: r-base-core r-cran-lme4 r-cran-jsonlite)
#
# Writes
#   tests/data/lme4/<scenario>/random_intercept.json   (scenario data: data.csv beside it)
#   tests/data/lme4/sleepstudy/data.csv                (lme4::sleepstudy, %.17g numbers)
#   tests/data/lme4/sleepstudy/random_intercept.json   (also the full model under "fits")
#   tests/data/lme4/printed_real.json                  (print(summary()) of the best fits)
# See the "layout" entry of each JSON for the keys.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

here = local({
  f = sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else getwd()
})
real = file.path(dirname(here), "real")

SCENARIOS = c("baseline", "more_subject_variance", "more_slope_variance", "fewer_obs",
              "more_obs", "unbalanced")
REAL = list(
  ChickWeight = list(y = "weight", x = "Time", g = "Chick"),
  Orange = list(y = "circumference", x = "age", g = "Tree"),
  CO2 = list(y = "uptake", x = "conc", g = "Plant"),
  Loblolly = list(y = "height", x = "age", g = "Seed")
)

TIGHT = list(rhobeg = 2e-4, rhoend = 2e-9, maxfun = 1e5)
tight_control = function() lmerControl(optimizer = "bobyqa", optCtrl = TIGHT)
NM_TIGHT = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e5)

quiet_lmer = function(...) {
  warns = character(0)
  msgs = character(0)
  fit = withCallingHandlers(
    lmer(...),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  )
  list(fit = fit, warnings = warns, messages = msgs)
}

crit = function(fit) if (isREML(fit)) as.numeric(REMLcrit(fit)) else as.numeric(deviance(fit))

describe = function(run, g, slope_random) {
  fit = run$fit
  fe = fixef(fit)
  V = as.matrix(vcov(fit))
  vc = VarCorr(fit)[[1]]
  re = matrix(as.numeric(vc), nrow(vc), ncol(vc))
  cf = coef(fit)[[g]]
  oi = fit@optinfo
  res = list(
    criterion = crit(fit),
    theta = I(unname(as.numeric(getME(fit, "theta")))),
    fixed = I(unname(as.numeric(fe))),
    fixed_names = I(names(fe)),
    se = I(unname(sqrt(diag(V)))),
    fixed_cov = unname(V),
    re_cov = if (slope_random) unname(re) else NULL,
    re_var = if (!slope_random) as.numeric(re) else NULL,
    sigma2 = sigma(fit)^2,
    singular = isSingular(fit),
    coef = Filter(Negate(is.null), list(
      cluster = I(rownames(cf)),
      intercept = I(unname(as.numeric(cf[, 1]))),
      slope = if (ncol(cf) > 1) I(unname(as.numeric(cf[, 2]))) else NULL
    )),
    optimizer = oi$optimizer,
    optimizer_code = oi$conv$opt,
    feval = oi$feval,
    lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
    warnings = I(unique(run$warnings)),
    messages = I(unique(run$messages))
  )
  res[!vapply(res, is.null, logical(1))]
}

start_grid = function(sx, n_theta) {
  if (n_theta == 1) return(lapply(c(0.01, 0.1, 1, 10, 100), function(t) t))
  g = expand.grid(t1 = c(0.1, 1, 10), t2 = c(-1, 0, 1), t3 = c(0.1, 1, 10))
  lapply(seq_len(nrow(g)), function(i) c(g$t1[i], g$t2[i] / sx, g$t3[i] / sx))
}

# default control, and the best of tight bobyqa runs from several starts and a tight
# Nelder_Mead (as tests/data/real/make_refs.R); returns the fits' descriptions and the
# best fit itself (for printing)
fit_one = function(formula, df, g, reml, slope_random, sx) {
  default = quiet_lmer(formula, data = df, REML = reml)
  tight0 = quiet_lmer(formula, data = df, REML = reml, control = tight_control())
  n_theta = length(getME(default$fit, "theta"))
  runs = list(list(label = "lme4 start", run = tight0))
  starts = c(list(getME(default$fit, "theta")), start_grid(sx, n_theta))
  labels = c("default fit's theta", rep("grid", length(starts) - 1))
  for (i in seq_along(starts)) {
    r = tryCatch(
      quiet_lmer(formula, data = df, REML = reml, control = tight_control(),
                 start = list(theta = starts[[i]])),
      error = function(e) NULL
    )
    if (!is.null(r)) runs[[length(runs) + 1]] = list(label = labels[i], start = starts[[i]], run = r)
  }
  nm = tryCatch(
    quiet_lmer(formula, data = df, REML = reml,
               control = lmerControl(optimizer = "Nelder_Mead", optCtrl = NM_TIGHT)),
    error = function(e) NULL
  )
  if (!is.null(nm)) runs[[length(runs) + 1]] = list(label = "Nelder_Mead tight from lme4 start", run = nm)
  crits = vapply(runs, function(r) crit(r$run$fit), numeric(1))
  best = which.min(crits)
  tight = describe(runs[[best]]$run, g, slope_random)
  tight$control = "bobyqa rhobeg=2e-4 rhoend=2e-9 maxfun=1e5; restarts from other thetas and a tight Nelder_Mead; lowest criterion kept"
  tight$start = runs[[best]]$label
  d = describe(default, g, slope_random)
  d$control = "lmerControl() defaults"
  best_fit = if (crit(default$fit) <= crits[best]) default$fit else runs[[best]]$run$fit
  list(refs = list(default = d, tight = tight), best = best_fit)
}

printed = function(fit) capture.output(print(summary(fit), correlation = FALSE))

random_intercept = function(df, y, x, g) {
  sx = sd(df[[x]])
  forms = list(
    "y ~ x + (1 | g)" = as.formula(sprintf("%s ~ %s + (1 | %s)", y, x, g)),
    "y ~ 1 + (1 | g)" = as.formula(sprintf("%s ~ 1 + (1 | %s)", y, g))
  )
  refs = list()
  text = list()
  for (key in names(forms)) {
    refs[[key]] = list()
    text[[key]] = list()
    for (m in c("REML", "ML")) {
      r = fit_one(forms[[key]], df, g, m == "REML", FALSE, sx)
      refs[[key]][[m]] = r$refs
      text[[key]][[m]] = I(printed(r$best))
    }
  }
  list(fits = refs, printed = text)
}

LAYOUT = paste(
  "random_intercept/<model>/{REML,ML}/{default,tight}: lme4's fits of the model,",
  "<model> 'y ~ x + (1 | g)' or 'y ~ 1 + (1 | g)' with the data's y, x and cluster columns.",
  "default = lmer() with lmerControl() defaults; tight = best (lowest criterion) of bobyqa",
  "(rhobeg 2e-4, rhoend 2e-9, maxfun 1e5) from lme4's start, from the default fit's theta and",
  "from thetas 0.01..100, and a tight Nelder_Mead; 'start' names the winner.",
  "criterion: REMLcrit() for REML, deviance() for ML. theta: getME(fit, 'theta') (one number);",
  "fixed/se/fixed_cov: fixef, sqrt(diag(vcov)), vcov; re_var: the intercept variance;",
  "sigma2: sigma(fit)^2; coef: coef(fit) per cluster (slope: the common fixed slope), in",
  "R's factor-level order, labels as strings. printed/<model>/{REML,ML}: the lines of",
  "print(summary(fit), correlation = FALSE) for the better of the two fits.",
  "fits/{REML,ML}/{default,tight} (sleepstudy only): the same for y ~ x + (x | g)."
)

full_precision = function(x) {
  num = function(v) ifelse(is.finite(v), sprintf("%.17g", v), "null")
  verbatim = function(s) structure(s, class = "json")
  if (is.list(x)) {
    cls = class(x)
    x = lapply(x, full_precision)
    if ("AsIs" %in% cls) class(x) = cls
    return(x)
  }
  if (!is.double(x)) return(x)
  if (is.matrix(x)) {
    rows = apply(x, 1, function(r) paste0("[", paste(num(r), collapse = ", "), "]"))
    return(verbatim(paste0("[", paste(rows, collapse = ", "), "]")))
  }
  if (length(x) == 1 && !inherits(x, "AsIs")) return(verbatim(num(x)))
  verbatim(paste0("[", paste(num(x), collapse = ", "), "]"))
}

write_json_file = function(res, path) {
  writeLines(toJSON(full_precision(res), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE),
             path)
}

header = function(name, y, x, g, df) {
  list(
    dataset = name, y = y, x = x, cluster = g, data = "data.csv",
    n_obs = nrow(df), n_clusters = nlevels(df[[g]]),
    lme4_version = as.character(packageVersion("lme4")),
    Matrix_version = as.character(packageVersion("Matrix")),
    R_version = R.version.string,
    layout = LAYOUT
  )
}

report = function(name, ri) {
  for (key in names(ri$fits)) for (m in c("REML", "ML")) {
    f = ri$fits[[key]][[m]]
    cat(sprintf("%-22s %-16s %-4s default %.10f  tight %.10f  diff %.3g\n", name, key, m,
                f$default$criterion, f$tight$criterion,
                f$default$criterion - f$tight$criterion))
  }
}

# the article's six scenarios: data.csv as written by make_refs.R (numeric cluster labels)
for (s in SCENARIOS) {
  dir = file.path(here, s)
  df = read.csv(file.path(dir, "data.csv"))
  df$cluster = factor(df$cluster)
  ri = random_intercept(df, "y", "x", "cluster")
  res = c(header(s, "y", "x", "cluster", df), list(random_intercept = ri$fits, printed = ri$printed))
  write_json_file(res, file.path(dir, "random_intercept.json"))
  report(s, ri)
}

# lme4's sleepstudy (Reaction ~ Days + (Days | Subject), the README's example)
dir = file.path(here, "sleepstudy")
dir.create(dir, showWarnings = FALSE)
df = lme4::sleepstudy
txt = data.frame(Reaction = sprintf("%.17g", df$Reaction), Days = sprintf("%.17g", df$Days),
                 Subject = as.character(df$Subject))
write.csv(txt, file.path(dir, "data.csv"), row.names = FALSE, quote = FALSE)
back = read.csv(file.path(dir, "data.csv"), colClasses = "character")
stopifnot(identical(as.numeric(back$Reaction), df$Reaction),
          identical(as.numeric(back$Days), df$Days),
          identical(back$Subject, as.character(df$Subject)))
ri = random_intercept(df, "Reaction", "Days", "Subject")
full = list()
for (m in c("REML", "ML")) {
  full[[m]] = fit_one(Reaction ~ Days + (Days | Subject), df, "Subject", m == "REML", TRUE,
                      sd(df$Days))$refs
}
res = c(header("sleepstudy", "Reaction", "Days", "Subject", df),
        list(random_intercept = ri$fits, printed = ri$printed, fits = full))
write_json_file(res, file.path(dir, "random_intercept.json"))
report("sleepstudy", ri)

# printed summaries on the four R data sets (their numbers are in real/<name>/lme4.json)
out = list()
for (name in names(REAL)) {
  spec = REAL[[name]]
  df = read.csv(file.path(real, name, "data.csv"), colClasses = "character")
  df[[spec$y]] = as.numeric(df[[spec$y]])
  df[[spec$x]] = as.numeric(df[[spec$x]])
  df[[spec$g]] = factor(df[[spec$g]])
  ri = random_intercept(df, spec$y, spec$x, spec$g)
  out[[name]] = ri$printed
  report(name, ri)
}
write_json_file(list(layout = "printed/<data set>/<model>/{REML,ML}: lines of print(summary(fit), correlation = FALSE) for the best lme4 fit; numbers in real/<name>/lme4.json",
                     printed = out),
                file.path(here, "printed_real.json"))
