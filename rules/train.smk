# train the network; evaluate it on the held-out regions; write the report


rule train:
    input:
        patches=rules.patches.output[0],
        normalisation=rules.normalise.output[0],
        extra=TRAIN_EXTRA,
    output:
        **outputs(R.train),
    params:
        store=lambda w, input: str(patches_store_path(input.patches)),
        out=lambda w, output: parent(output.record),
        settings=settings("model", "train"),
    log:
        str(R.log("train")),
    conda:
        "../envs/srbio.yaml"
    threads: 8
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio train --overwrite --patches {params.store:q} "
        "--normalisation {input.normalisation:q} --out {params.out:q} "
        "--settings {params.settings:q} --quiet > {log:q} 2>&1"


rule evaluate:
    input:
        model=rules.train.output.model,
        crops=PREPARED_RECORDS,
    output:
        **outputs(R.evaluate),  # the record names the comparison pictures (QC-skipped pairs: none)
    params:
        crops=lambda w, input: [parent(p) for p in input.crops],
        out=lambda w, output: parent(output.record),
        settings=settings("split", "predict", predict={"volumes", "dtype", "chunk"}),
    log:
        str(R.log("evaluate")),
    conda:
        "../envs/srbio.yaml"
    threads: 8
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio evaluate --overwrite --model {input.model:q} "
        "--crops {params.crops:q} --out {params.out:q} --settings {params.settings:q} "
        "> {log:q} 2>&1"


rule report:
    input:
        evaluation=rules.evaluate.output.record,
        training=rules.train.output.record,
        normalisation=rules.normalise.output[0],
        registrations=[str(R.register(name).record) for name in PAIRS],
    output:
        str(R.report),
    log:
        str(R.log("report")),
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        "python -m srbio report --overwrite --out {output:q} --evaluation {input.evaluation:q} "
        "--training {input.training:q} --normalisation {input.normalisation:q} "
        "--registrations {input.registrations:q} > {log:q} 2>&1"
