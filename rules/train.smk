# train each model (one job per label of `models:`, or the one `model`); evaluate each on the
# held-out regions; write the report comparing them


rule train_model:
    input:
        patches=rules.patches.output[0],
        normalisation=rules.normalise.output[0],
        extra=train_extra,
    output:
        **outputs(R.train("{model}")),
    params:
        store=lambda w, input: str(patches_store_path(input.patches)),
        out=lambda w, output: parent(output.record),
        settings=lambda w: model_settings(CFG, w.model),
        launch=launcher,
    log:
        str(R.log("train", "{model}")),
    conda:
        "../envs/srbio.yaml"
    threads: 8
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        # --auto-resume: a retried or requeued job continues its checkpoint when settings and
        # data are unchanged, and starts afresh (saying so in the log) when they changed
        "OMP_NUM_THREADS={threads} {params.launch}python -m srbio train --auto-resume "
        "--patches {params.store:q} "
        "--normalisation {input.normalisation:q} --out {params.out:q} "
        "--settings {params.settings:q} --quiet > {log:q} 2>&1"


rule evaluate_model:
    input:
        model=rules.train_model.output.model,
        crops=PREPARED_RECORDS,
    output:
        **outputs(R.evaluate("{model}")),  # the record names the comparison pictures
    params:
        crops=lambda w, input: [parent(p) for p in input.crops],
        out=lambda w, output: parent(output.record),
        settings=settings("split", "predict", predict={"volumes", "dtype", "chunk", "shard", "model", "workers", "parts"}),
    log:
        str(R.log("evaluate", "{model}")),
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


rule train:
    input:
        [str(R.train(m).model) for m in MODELS],
    default_target: False


rule evaluate:
    input:
        [str(R.evaluate(m).record) for m in MODELS],
    default_target: False


rule report:
    input:
        evaluations=[str(R.evaluate(m).record) for m in MODELS],
        trainings=[str(R.train(m).record) for m in MODELS],
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
        "python -m srbio report --overwrite --out {output:q} --evaluation {input.evaluations:q} "
        "--training {input.trainings:q} --normalisation {input.normalisation:q} "
        "--registrations {input.registrations:q} > {log:q} 2>&1"
