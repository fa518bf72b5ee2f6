# srbio workflow: register -> crop -> normalise -> patches -> train -> predict / evaluate -> report
# Targets: all (default), train, predict, evaluate, report.  See README.md.
#
# `snakemake` alone runs the demo configuration (config.yaml). `snakemake --configfile my.yaml`
# runs exactly what my.yaml says (schema defaults for the rest, nothing of the demo).


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/prepare.smk"
include: "rules/train.smk"
include: "rules/predict.smk"


rule all:
    input:
        R.report,
        PREDICTIONS,
    default_target: True
