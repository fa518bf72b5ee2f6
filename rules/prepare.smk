# simulate (optional) -> register -> crop -> enhance (optional) -> normalise -> patches


rule simulate:
    input:
        hr=lambda w: SIM[w.sim].hr,
        psf=lambda w: SIM[w.sim].psf or [],
    output:
        **outputs(R.simulated("{sim}")),
    params:
        out=lambda w, output: parent(output.record),
        settings=lambda w: json.dumps({"simulate": SIM[w.sim].model_dump(
            mode="json", exclude={"name", "hr", "hr_spacing"})}, sort_keys=True,
            separators=(",", ":")),
        spacing=lambda w: spacing_flag("--hr-spacing", SIM[w.sim].hr_spacing),
    log:
        str(R.log("simulate", "{sim}")),
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "python -m srbio simulate --overwrite --hr {input.hr:q} --out {params.out:q} "
        "--settings {params.settings:q} {params.spacing} > {log:q} 2>&1"


rule register:
    input:
        hr=lambda w: PAIRS[w.pair].hr,
        lr=lambda w: PAIRS[w.pair].lr,
        truth=lambda w: PAIRS[w.pair].truth or [],
    output:
        **outputs(R.register("{pair}")),
    params:
        out=lambda w, output: parent(output.record),
        settings=settings("register"),
        truth=lambda w, input: optional_flag("--truth", input.truth),
        spacing=lambda w: " ".join([
            spacing_flag("--fixed-spacing", PAIRS[w.pair].hr_spacing),
            spacing_flag("--moving-spacing", PAIRS[w.pair].lr_spacing),
        ]),
    log:
        str(R.log("register", "{pair}")),
    conda:
        "../envs/srbio.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={threads} "
        "python -m srbio register --overwrite --fixed {input.hr:q} --moving {input.lr:q} "
        "--out {params.out:q} --settings {params.settings:q} {params.truth} "
        "{params.spacing} > {log:q} 2>&1"


rule crop:
    input:
        **outputs(R.register("{pair}")),
        hr=lambda w: PAIRS[w.pair].hr,
    output:
        **outputs(R.crop("{pair}")),
    params:
        registered=lambda w, input: parent(input.record),
        out=lambda w, output: parent(output.record),
        settings=settings("crop"),
    log:
        str(R.log("crop", "{pair}")),
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "python -m srbio crop --overwrite --registered {params.registered:q} --hr {input.hr:q} "
        "--out {params.out:q} --settings {params.settings:q} > {log:q} 2>&1"


rule enhance:
    input:
        **outputs(R.crop("{pair}")),
        psfs=[s.psf for s in CFG.enhance.steps if getattr(s, "psf", None)],
    output:
        **outputs(R.enhance("{pair}")),
    params:
        crop=lambda w, input: parent(input.record),
        out=lambda w, output: parent(output.record),
        settings=settings("enhance"),
    log:
        str(R.log("enhance", "{pair}")),
    conda:
        "../envs/srbio.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio enhance --overwrite --crop {params.crop:q} "
        "--out {params.out:q} --settings {params.settings:q} > {log:q} 2>&1"


# the prepared pairs: enhanced when enhance.steps is set, else as cropped
PREPARED = {name: (R.enhance(name) if CFG.enhance.steps else R.crop(name)) for name in PAIRS}
PREPARED_RECORDS = [str(folder.record) for folder in PREPARED.values()]


rule normalise:
    input:
        PREPARED_RECORDS,
    output:
        str(R.normalisation),
    params:
        crops=lambda w, input: [parent(p) for p in input],
        settings=settings("normalise", "split"),
    log:
        str(R.log("normalise")),
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=8000,
        runtime=15,
    shell:
        "python -m srbio normalise --overwrite --crops {params.crops:q} --out {output:q} "
        "--settings {params.settings:q} > {log:q} 2>&1"


rule patches:
    input:
        PREPARED_RECORDS,
    output:
        str(R.patches.record),  # written last, beside the store (no timestamp inside the zarr)
    params:
        crops=lambda w, input: [parent(p) for p in input],
        store=lambda w, output: str(patches_store_path(output[0])),
        settings=settings("patches", "split"),
    log:
        str(R.log("patches")),
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=8000,
        runtime=15,
    shell:
        "python -m srbio patches --overwrite --crops {params.crops:q} --out {params.store:q} "
        "--settings {params.settings:q} > {log:q} 2>&1"
