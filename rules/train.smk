# train the network; evaluate it on the held-out regions; write the report


rule train:
    input:
        patches=rules.patches.output[0],
        normalisation=rules.normalise.output[0],
    output:
        model=f"{RES}/train/model.pt",
        curve=f"{RES}/train/training_curve.png",
        meta=f"{RES}/train/training.json",
    params:
        cfg=CONFIG_JSON,
        section=section("model") + section("train"),
    log:
        f"{RES}/logs/train.log",
    conda:
        "../envs/srbio.yaml"
    threads: 8
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio train --patches {input.patches} "
        "--normalisation {input.normalisation} --out $(dirname {output.model}) "
        "--config {params.cfg} > {log} 2>&1"


rule evaluate:
    input:
        model=rules.train.output.model,
        crops=CROPS,
    output:
        metrics=f"{RES}/evaluate/metrics.json",
        pictures=expand(f"{RES}/evaluate/comparison_{{pair}}.png", pair=PAIRS),
    params:
        cfg=CONFIG_JSON,
        section=section("split") + section("predict"),
        crops=lambda w, input: folders(input.crops),
    log:
        f"{RES}/logs/evaluate.log",
    conda:
        "../envs/srbio.yaml"
    threads: 8
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio evaluate --model {input.model} "
        "--crops {params.crops} --out $(dirname {output.metrics}) --config {params.cfg} "
        "> {log} 2>&1"


rule report:
    input:
        evaluate=rules.evaluate.output.metrics,
        train=rules.train.output.meta,
        normalisation=rules.normalise.output[0],
        register=expand(f"{RES}/register/{{pair}}/metrics.json", pair=PAIRS),
        predictions=PREDICTIONS,
    output:
        f"{RES}/report.md",
    params:
        cfg=CONFIG_JSON,
    log:
        f"{RES}/logs/report.log",
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        "python -m srbio report --config {params.cfg} --out {output} "
        "--predictions {input.predictions} > {log} 2>&1"
