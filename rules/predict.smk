# predict every volume listed under `predict.volumes` with the trained model (predict.model):
# one job per volume, or with `predict.parts: N` > 1 a scatter / gather per volume: predict_init
# creates the store, N predict_part jobs (concurrent) each predict their share of its blocks,
# predict_gather checks every block, builds the pyramid and writes the record. Every step gets
# the same settings, so they agree on the store's fingerprint.

PREDICT_INPUT = {
    "model": str(R.train(PREDICTOR).model),
    "volume": lambda w: VOLUMES[w.volume].path,
}
PREDICT_PARAMS = {
    "store": lambda w: str(R.prediction(w.volume).store),  # written in place, resumably
    "settings": settings("predict", predict={"volumes", "model"}),
    "spacing": lambda w: spacing_flag("--spacing", VOLUMES[w.volume].spacing),
    "chunks": lambda w: "--allow-missing-chunks" if VOLUMES[w.volume].allow_missing_chunks else "",
}


if PARTS == 1:

    rule predict_volume:
        input:
            **PREDICT_INPUT,
        output:
            str(R.prediction("{volume}").record),  # written once the OME-Zarr beside it is complete
        params:
            **PREDICT_PARAMS,
        log:
            str(R.log("predict", "{volume}")),
        conda:
            "../envs/srbio.yaml"
        threads: 8
        resources:
            mem_mb=8000,
            runtime=240,
        shell:
            "OMP_NUM_THREADS={threads} python -m srbio predict --overwrite --model {input.model:q} "
            "--input {input.volume:q} --output {params.store:q} --settings {params.settings:q} "
            "{params.spacing} {params.chunks} --quiet > {log:q} 2>&1"

else:

    rule predict_init:
        input:
            **PREDICT_INPUT,
        output:
            predict_step("{volume}", "init"),  # the store is created (another job's replaced)
        params:
            **PREDICT_PARAMS,
        log:
            str(R.log("predict", "{volume}.init")),
        conda:
            "../envs/srbio.yaml"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=30,
        shell:
            "OMP_NUM_THREADS={threads} python -m srbio predict --init --overwrite "
            "--model {input.model:q} --input {input.volume:q} --output {params.store:q} "
            "--settings {params.settings:q} {params.spacing} {params.chunks} --quiet "
            "> {log:q} 2>&1 && touch {output:q}"

    rule predict_part:
        input:
            **PREDICT_INPUT,
            init=rules.predict_init.output[0],
        output:
            predict_step("{volume}", f"{{part}}-of-{PARTS}"),  # its share of blocks is finished
        params:
            **PREDICT_PARAMS,
            parts=PARTS,
        log:
            str(R.log("predict", f"{{volume}}.{{part}}-of-{PARTS}")),
        wildcard_constraints:
            part=r"[1-9][0-9]*",
        conda:
            "../envs/srbio.yaml"
        threads: 8
        resources:
            mem_mb=8000,
            runtime=240,
        shell:
            "OMP_NUM_THREADS={threads} python -m srbio predict "
            "--part {wildcards.part:q}/{params.parts} --model {input.model:q} "
            "--input {input.volume:q} --output {params.store:q} --settings {params.settings:q} "
            "{params.spacing} {params.chunks} --quiet > {log:q} 2>&1 && touch {output:q}"

    rule predict_gather:
        input:
            **PREDICT_INPUT,
            parts=[predict_step("{volume}", f"{i}-of-{PARTS}") for i in range(1, PARTS + 1)],
        output:
            str(R.prediction("{volume}").record),  # written once the OME-Zarr beside it is complete
        params:
            **PREDICT_PARAMS,
        log:
            str(R.log("predict", "{volume}")),
        conda:
            "../envs/srbio.yaml"
        threads: 1  # the pyramid is built by one process
        resources:
            mem_mb=8000,
            runtime=240,
        shell:
            "OMP_NUM_THREADS={threads} python -m srbio predict --gather --model {input.model:q} "
            "--input {input.volume:q} --output {params.store:q} --settings {params.settings:q} "
            "{params.spacing} {params.chunks} --quiet > {log:q} 2>&1"


rule predict:
    input:
        PREDICTIONS,
    default_target: False


localrules:
    predict,
    train,
    evaluate,
    all,
