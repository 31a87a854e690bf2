"""A study: several arms (the variants of a lab's comparison, or a baseline and an improvement), each trained from
each seed into a folder of its own (``shared.run.unit.train_unit``), then their table, the lab report and the best
model."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from shared.formats import rundir
from shared.model.specs import ModelSpec
from shared.report import reports, study_report
from shared.run.experiments import PreparedData
from shared.run.plan import Job, unit_dir
from shared.run.unit import train_unit
from shared.training import tensorboard_log
from shared.training.backend import Backend, Model
from shared.util.errors import EXIT_OK
from shared.util.timings import Timings


def train_study(backend: Backend, specs: dict[str, ModelSpec], data: PreparedData, job: Job, device: str,
                timings: Timings, backbone: dict | None) -> tuple[int, dict]:
    """Each arm trains on the same data, from each seed, into its own folder; then the study's table and report
    (``write_study_table``). Returns the exit status and the models trained in this process by their folder (an
    arm's first seed under the arm's name too)."""
    plan, writes = job.plan, backend.current_world().is_main
    folders: dict[str, list[str]] = {}  # arm -> its units' folders
    models: dict[str, Model] = {}
    for arm in plan.arms:
        folders[arm.name] = []
        for unit in plan.units(arm):
            folder = unit_dir(job.run_dir, unit)
            if unit.folder in job.done:
                print(f"\n=== {unit.folder}: complete, kept ===")
            else:
                print(f"\n=== {unit.folder} ===")
                if writes:
                    folder.mkdir(parents=True, exist_ok=True)
                trained = train_unit(backend, specs[arm.arch], data, job, device, unit, timings, backbone)
                models[unit.folder] = trained.model
                if trained.exit_status != EXIT_OK:
                    return trained.exit_status, models
            folders[arm.name].append(unit.folder)
        if plan.repeats > 1 and writes:  # the arm's folder holds a model too: its first seed's, as a single run
            copy_model_files(job.run_dir / folders[arm.name][0], job.run_dir / arm.name)
            if folders[arm.name][0] in models:
                models[arm.name] = models[folders[arm.name][0]]
    if writes:
        write_study_table(job, backend.framework, data.train.name, folders)
    return EXIT_OK, models


def write_study_table(job: Job, framework: str, dataset: str, folders: dict[str, list[str]]) -> None:
    """The comparison table (mean and std over the seeds, and the gain over the baseline arm where the experiment
    has one) as comparison.json and .md, the lab report, and for a study without a baseline a copy of the best arm's
    model files in ``best/``."""
    plan = job.plan
    results = {arm: [rundir.read_json(job.run_dir / folder / rundir.METRICS) for folder in arm_folders]
               for arm, arm_folders in folders.items()}
    table = reports.compare_variants(results, plan.experiment.baseline)
    for arm in plan.arms:
        recipe = {key: getattr(plan.units(arm)[0].config, key) for key in asdict(arm.recipe)}
        table["variants"][arm.name].update(runs=folders[arm.name], recipe=recipe)
    title = f"{plan.experiment.name}: {dataset}, {framework}"
    table = {"framework": framework, "experiment": plan.experiment.name, "title": title,
             "repeats": plan.repeats, "seeds": plan.seeds, **table}
    rundir.write_json(job.run_dir / f"{rundir.COMPARISON}.json", table)
    markdown = reports.comparison_markdown(table, title)
    reports.write_text(job.run_dir / f"{rundir.COMPARISON}.md", markdown)
    if plan.experiment.baseline is None:
        copy_model_files(job.run_dir / table["best"], job.run_dir / rundir.BEST, replace_old=True)
        where = f"best variant copied to {job.run_dir / rundir.BEST}"
    else:
        where = f"best arm: {job.run_dir / table['best']}"
    report = study_report.write_study_report(job.run_dir, table)
    print(f"\n{markdown}\n{where}; lab report {report}")


def copy_model_files(source: Path, target: Path, replace_old: bool = False) -> None:
    """A finished model's files (checkpoint, weights, ONNX, metrics, reports) into ``target``, without the
    training checkpoints or the repeats' own folders. ``replace_old``: an extended study may pick another arm."""
    if replace_old:
        shutil.rmtree(target, ignore_errors=True)
    # The event files stay with the seed that wrote them: a copy would show in TensorBoard as a run of its own.
    skipped = shutil.ignore_patterns(rundir.CHECKPOINTS, "seed-*", tensorboard_log.FOLDER)
    shutil.copytree(source, target, ignore=skipped, dirs_exist_ok=True)
