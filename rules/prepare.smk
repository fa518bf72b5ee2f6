# simulate (optional) -> register -> crop -> enhance (optional) -> normalise -> patches


rule simulate:
    input:
        hr=lambda w: SIM[w.sim].hr,
    output:
        lr=f"{RES}/simulated/{{sim}}/lr.tif",
        truth=f"{RES}/simulated/{{sim}}/truth.tfm",
        meta=f"{RES}/simulated/{{sim}}/simulation.json",
    params:
        cfg=CONFIG_JSON,
        section=lambda w: SIM[w.sim].model_dump_json(),
        spacing=lambda w: spacing_flag("--hr-spacing", SIM[w.sim].hr_spacing),
    log:
        f"{RES}/logs/simulate/{{sim}}.log",
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "python -m srbio simulate --hr {input.hr} --out $(dirname {output.lr}) "
        "--config {params.cfg} --name {wildcards.sim} {params.spacing} > {log} 2>&1"


rule register:
    input:
        hr=lambda w: PAIRS[w.pair].hr,
        lr=lambda w: PAIRS[w.pair].lr,
        truth=lambda w: PAIRS[w.pair].truth or [],
    output:
        transform=f"{RES}/register/{{pair}}/transform.tfm",
        resampled=f"{RES}/register/{{pair}}/moving_resampled.tif",
        mask=f"{RES}/register/{{pair}}/mask.tif",
        metrics=f"{RES}/register/{{pair}}/metrics.json",
        qc=f"{RES}/register/{{pair}}/qc.png",
    params:
        cfg=CONFIG_JSON,
        section=section("register"),
        truth=lambda w, input: f"--truth {input.truth}" if input.truth else "",
        spacing=lambda w: " ".join([
            spacing_flag("--fixed-spacing", PAIRS[w.pair].hr_spacing),
            spacing_flag("--moving-spacing", PAIRS[w.pair].lr_spacing),
        ]),
    log:
        f"{RES}/logs/register/{{pair}}.log",
    conda:
        "../envs/srbio.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={threads} "
        "python -m srbio register --fixed {input.hr} --moving {input.lr} "
        "--out $(dirname {output.metrics}) --config {params.cfg} {params.truth} "
        "{params.spacing} > {log} 2>&1"


rule crop:
    input:
        hr=lambda w: PAIRS[w.pair].hr,
        resampled=rules.register.output.resampled,
        mask=rules.register.output.mask,
        metrics=rules.register.output.metrics,
    output:
        lr=f"{RES}/crop/{{pair}}/lr.tif",
        hr=f"{RES}/crop/{{pair}}/hr.tif",
        mask=f"{RES}/crop/{{pair}}/mask.tif",
        box=f"{RES}/crop/{{pair}}/box.json",
    params:
        cfg=CONFIG_JSON,
        section=section("crop"),
        spacing=lambda w: spacing_flag("--hr-spacing", PAIRS[w.pair].hr_spacing),
    log:
        f"{RES}/logs/crop/{{pair}}.log",
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "python -m srbio crop --registered $(dirname {input.metrics}) --hr {input.hr} "
        "--out $(dirname {output.box}) --config {params.cfg} {params.spacing} > {log} 2>&1"


rule enhance:
    input:
        crop=rules.crop.output.box,
        psfs=[s.psf for s in CFG.enhance.steps if getattr(s, "psf", None)],
    output:
        lr=f"{RES}/enhance/{{pair}}/lr.tif",
        hr=f"{RES}/enhance/{{pair}}/hr.tif",
        mask=f"{RES}/enhance/{{pair}}/mask.tif",
        box=f"{RES}/enhance/{{pair}}/box.json",
        provenance=f"{RES}/enhance/{{pair}}/provenance.json",
    params:
        cfg=CONFIG_JSON,
        section=section("enhance"),
    log:
        f"{RES}/logs/enhance/{{pair}}.log",
    conda:
        "../envs/srbio.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} python -m srbio enhance --crop $(dirname {input.crop}) "
        "--out $(dirname {output.box}) --config {params.cfg} > {log} 2>&1"


# the prepared pairs: enhanced when enhance.steps is set, else as cropped
PREPARED = "enhance" if CFG.enhance.steps else "crop"
CROPS = expand(f"{RES}/{PREPARED}/{{pair}}/box.json", pair=PAIRS)


rule normalise:
    input:
        CROPS,
    output:
        f"{RES}/normalisation.json",
    params:
        cfg=CONFIG_JSON,
        section=section("normalise") + section("split"),
        crops=lambda w, input: folders(input),
    log:
        f"{RES}/logs/normalise.log",
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=8000,
        runtime=15,
    shell:
        "python -m srbio normalise --crops {params.crops} --out {output} "
        "--config {params.cfg} > {log} 2>&1"


rule patches:
    input:
        CROPS,
    output:
        directory(f"{RES}/patches.zarr"),
    params:
        cfg=CONFIG_JSON,
        section=section("patches") + section("split"),
        crops=lambda w, input: folders(input),
    log:
        f"{RES}/logs/patches.log",
    conda:
        "../envs/srbio.yaml"
    resources:
        mem_mb=8000,
        runtime=15,
    shell:
        "python -m srbio patches --crops {params.crops} --out {output} "
        "--config {params.cfg} > {log} 2>&1"
