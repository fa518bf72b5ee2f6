# srbio workflow: register -> crop -> normalise -> patches -> train -> predict / evaluate -> report
# Targets: all (default), train, predict, evaluate, report.  See README.md.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/prepare.smk"
include: "rules/train.smk"
include: "rules/predict.smk"


rule all:
    input:
        f"{RES}/report.md",
        PREDICTIONS,
    default_target: True
