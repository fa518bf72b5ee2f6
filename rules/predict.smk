# predict every volume listed under `predict.volumes` with the trained model (predict.model)


rule predict_volume:
    input:
        model=str(R.train(PREDICTOR).model),
        volume=lambda w: VOLUMES[w.volume].path,
    output:
        str(R.prediction("{volume}").record),  # written after the OME-Zarr beside it is complete
    params:
        store=lambda w, output: str(prediction_store_path(output[0])),
        settings=settings("predict", predict={"volumes", "model"}),
        spacing=lambda w: spacing_flag("--spacing", VOLUMES[w.volume].spacing),
        chunks=lambda w: "--allow-missing-chunks" if VOLUMES[w.volume].allow_missing_chunks else "",
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


rule predict:
    input:
        PREDICTIONS,
    default_target: False


localrules:
    predict,
    train,
    evaluate,
    all,
