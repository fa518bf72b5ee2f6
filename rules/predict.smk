# predict every volume listed under `predict.volumes` with the trained model


rule predict_volume:
    input:
        model=rules.train.output.model,
        volume=lambda w: VOLUMES[w.volume].path,
    output:
        directory(f"{RES}/predict/{{volume}}.ome.zarr"),
    params:
        cfg=CONFIG_JSON,
        section=section("predict"),
        spacing=lambda w: spacing_flag("--spacing", VOLUMES[w.volume].spacing),
    log:
        f"{RES}/logs/predict/{{volume}}.log",
    conda:
        "../envs/srbio.yaml"
    threads: 8
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio predict --model {input.model} "
        "--input {input.volume} --output {output} --config {params.cfg} {params.spacing} "
        "--quiet > {log} 2>&1"


rule predict:
    input:
        PREDICTIONS,
    default_target: False


localrules:
    predict,
    all,
