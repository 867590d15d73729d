import dataclasses
import os
import signal
import time

import numpy as np
import pytensor
import pytest

from core import inference, schema
from core.inference import CheckpointError, FitConfig, TrainingDiverged, fit
from core.models import architecture, build_model
from core.priors import HierarchicalPrior, NormalPrior


def tiny_model(prior=None):
    rng = np.random.default_rng(0)
    images = rng.random((200, 28, 28)).astype(np.float32)
    labels = (images[:, :14].mean(axis=(1, 2)) > images[:, 14:].mean(axis=(1, 2))).astype(int)
    with pytensor.config.change_flags(floatX="float32"):
        return build_model(architecture("mlp", (8,)), prior or NormalPrior(), images, labels, batch_size=20)


CONFIG = FitConfig(iterations=40, batch_size=20, checkpoint_every=10, learning_rate=0.01)


def run(config=CONFIG, **kwargs):
    with pytensor.config.change_flags(floatX="float32"):
        return fit(tiny_model(kwargs.pop("prior", None)), config, progress=False, **kwargs)


def test_fit_records_every_elbo():
    result = run()
    assert result.elbo.shape == (40,) and np.isfinite(result.elbo).all()
    assert result.elbo[-10:].mean() > result.elbo[:10].mean()
    assert result.backend == "jax" and result.iterations_per_s > 0


def test_the_elbo_is_on_the_full_data_scale():
    """PyMC's loss is the ELBO / (total_size / batch_size); the post's ELBO, and ours, is not divided."""
    import pymc as pm

    with pytensor.config.change_flags(floatX="float32"), tiny_model():
        assert inference.elbo_scale(pm.ADVI().approx) == pytest.approx(200 / 20)


def test_same_seed_same_fit():
    np.testing.assert_array_equal(run().elbo, run().elbo)
    assert not np.array_equal(run().elbo, run(dataclasses.replace(CONFIG, seed=1)).elbo)


def test_resume_continues_the_elbo_history(tmp_path):
    ckpt = tmp_path / "c.npz"
    first = run(dataclasses.replace(CONFIG, iterations=20), checkpoint=ckpt)
    resumed = run(checkpoint=ckpt, resume=True)
    assert len(resumed.elbo) == 40
    np.testing.assert_array_equal(resumed.elbo[:20], first.elbo.astype(np.float64))
    assert resumed.elbo[20:].mean() > first.elbo[:10].mean()


def test_wall_time_is_stepping_and_compile_time_is_apart(monkeypatch):
    real = inference._compile

    def slow_compile(*args):
        time.sleep(1.0)
        return real(*args)

    monkeypatch.setattr(inference, "_compile", slow_compile)
    result = run()
    assert result.compile_time_s >= 1.0 and result.wall_time_s < 1.0
    assert result.iterations_per_s == pytest.approx(39 / result.wall_time_s)  # the first step is compile's


def test_a_checkpoint_holding_every_iteration_keeps_its_timing(tmp_path, monkeypatch):
    """Resuming a fit that is done takes no step and compiles nothing: the speed is the checkpoint's, not NaN."""
    ckpt = tmp_path / "c.npz"
    first = run(checkpoint=ckpt)
    with np.load(ckpt) as saved:
        timing = {k: saved[k].item() for k in inference.TIMING}

    def no_compile(*args):
        raise AssertionError("nothing to train: nothing to compile")

    monkeypatch.setattr(inference, "_compile", no_compile)
    again = run(checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(again.elbo, first.elbo.astype(np.float64))
    assert {k: getattr(again, k) for k in timing} == timing
    assert np.isfinite(again.iterations_per_s) and timing["backend"] == "jax"

    # a checkpoint from before the speed was saved gives the mean speed of its steps
    with np.load(ckpt) as saved:
        old = {k: saved[k] for k in saved.files if k not in ("iterations_per_s", "compile_time_s", "backend")}
    np.savez(ckpt, **old)
    again = run(checkpoint=ckpt, resume=True)
    assert again.iterations_per_s == pytest.approx(40 / timing["wall_time_s"])
    assert np.isnan(again.compile_time_s) and again.wall_time_s == timing["wall_time_s"]


def test_ctrl_c_saves_a_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "c.npz"
    real = inference._learning_rate

    def interrupt_at_25(config, step):
        if step == 25:
            raise KeyboardInterrupt
        return real(config, step)

    monkeypatch.setattr(inference, "_learning_rate", interrupt_at_25)
    result = run(checkpoint=ckpt)
    assert result.interrupted and len(result.elbo) == 25
    with np.load(ckpt) as saved:
        assert len(saved["elbo"]) == 25


def test_sigterm_saves_a_checkpoint_like_ctrl_c(tmp_path, monkeypatch):
    ckpt = tmp_path / "c.npz"
    real = inference._learning_rate

    def terminate_at_15(config, step):
        if step == 15:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(config, step)

    monkeypatch.setattr(inference, "_learning_rate", terminate_at_15)
    result = run(checkpoint=ckpt)
    assert result.interrupted and 15 <= len(result.elbo) <= 16
    with np.load(ckpt) as saved:
        assert len(saved["elbo"]) == len(result.elbo)


def test_nan_elbo_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "c.npz"
    real = inference._learning_rate
    monkeypatch.setattr(inference, "_learning_rate", lambda config, step: np.nan if step == 23 else real(config, step))
    with pytest.raises(TrainingDiverged, match=r"ELBO became nan at iteration 2[45].*last good checkpoint \(iteration 20\)"):
        run(checkpoint=ckpt)
    with np.load(ckpt) as saved:
        assert len(saved["elbo"]) == 20 and np.isfinite(saved["elbo"]).all()
        assert all(np.isfinite(saved[k]).all() for k in saved.files if k.startswith("state_"))


def test_resume_refuses_other_settings(tmp_path):
    ckpt = tmp_path / "c.npz"
    run(dataclasses.replace(CONFIG, iterations=10), checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="made for other settings"):
        run(dataclasses.replace(CONFIG, learning_rate=0.5), checkpoint=ckpt, resume=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        run(checkpoint=ckpt, resume=True)


def test_hierarchical_fit_and_parameters():
    result = run(prior=HierarchicalPrior())
    dims = {"dense_1.W": ("a", "b"), "dense_1.b": ("b",), "dense_2.W": ("b", "c"), "dense_2.b": ("c",)}
    means, sds = inference.approximation_params(result.approx, dims)
    assert means["dense_1.W"][0].shape == (784, 8) and means["dense_1.W"][1] == ("a", "b")
    assert means["dense_1.W_sd"][2] == {"transform": "log"} and means["dense_1.W_sd"][0].shape == ()
    assert (sds["dense_2.b"][0] > 0).all()


def test_backend_falls_back(monkeypatch, caplog):
    monkeypatch.setattr(inference, "BACKENDS", {"broken": "NO_SUCH_MODE", "c": "CVM"})
    x = pytensor.shared(np.float64(1.0))
    fn, name = inference._compile(x * 2, {x: x + 1}, 0, "broken")
    assert name == "c" and fn() == 2.0
    assert "backend broken is unavailable" in caplog.text


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        FitConfig(optimizer="sgd")
    assert inference.with_preset(CONFIG, "blog").optimizer == "adagrad_window"


def test_cosine_decays_to_its_floor_and_holds_it():
    config = FitConfig(iterations=1000, learning_rate=1e-2, lr_floor=0.01, lr_hold=0.2)
    rates = np.array([inference._learning_rate(config, i) for i in range(1000)])
    assert rates[0] == pytest.approx(1e-2)
    assert np.all(np.diff(rates[:800]) < 0), "decays over the first 80%"
    np.testing.assert_allclose(rates[800:], 1e-4, rtol=1e-12)  # then held at 1% of the peak
    # floor 0 and no hold: the plain cosine to 0 that runs made before the floor existed
    before = {k: schema.defaults()[k] for k in ("lr_floor", "lr_hold")}  # what files without them were made with
    plain = FitConfig(iterations=1000, learning_rate=1e-2, **before)
    assert inference._learning_rate(plain, 500) == pytest.approx(0.5e-2)
    assert inference._learning_rate(plain, 999) == pytest.approx(0.5e-2 * (1 + np.cos(np.pi * 0.999)))


@pytest.mark.parametrize("settings, message", [
    ({"lr_floor": 1.5}, "lr_floor must be between 0 and 1"),
    ({"lr_hold": 1.0}, "lr_hold must be at least 0 and under 1"),
])
def test_schedule_fractions_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        FitConfig(**settings)


# --- the stepper, and fit as the loop around any stepper ---------------------------------------------

def stepper(config=CONFIG, prior=None):
    return inference.ADVIStepper(tiny_model(prior), config)


def test_a_stepper_stepped_in_chunks_takes_fits_steps():
    """The benchmarks step an ADVIStepper in chunks; fit steps one at a time: the same ELBOs, bit for bit."""
    s = stepper()
    chunks = [s.step(7), s.step(33)]
    assert [len(c) for c in chunks] == [7, 33]
    np.testing.assert_array_equal(np.concatenate(chunks), run().elbo)
    state = s.state()
    assert state.iteration == 40 and state.elbo == tuple(np.concatenate(chunks))
    assert state.learning_rate == inference._learning_rate(CONFIG, 40) and s.backend == "jax"


def test_the_approximation_goes_into_another_stepper_by_name():
    first = stepper(prior=HierarchicalPrior())
    first.step(10)
    means, sds = first.approximation()
    assert means["dense_1.W"].shape == (784, 8) and means["dense_1.W_sd"].shape == ()  # on the log scale
    second = stepper(prior=HierarchicalPrior())
    second.load(inference.StartState(means, sds, elbo=list(first.state().elbo), wall_time_s=0.0))
    assert second.state().iteration == 10
    for got, want in zip(second.approximation(), (means, sds)):
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-7)
    second.step(1)
    with pytest.raises(RuntimeError, match="before compiling"):
        second.load(first.checkpoint())


def test_a_step_stops_at_a_non_finite_elbo(monkeypatch):
    real = inference._learning_rate
    monkeypatch.setattr(inference, "_learning_rate", lambda config, step: np.nan if step == 3 else real(config, step))
    values = stepper().step(10)
    assert 4 <= len(values) < 10 and np.isfinite(values[:-1]).all() and not np.isfinite(values[-1])


class Parabola:
    """A stepper that is not ADVI: gradient ascent on -x^2, its "ELBO" -x^2. fit's loop drives it."""

    backend, kind, objective = "numpy", "ascent", "-x^2"

    def __init__(self, x=3.0, rate=0.1):
        self.x, self.rate, self.elbo, self.compiled = x, rate, [], 0

    def compile(self):
        self.compiled += 1

    def step(self, n):
        start = len(self.elbo)
        for _ in range(n):
            self.x -= self.rate * 2 * self.x
            self.elbo.append(-self.x**2 if self.rate < 1.5 else np.inf)
        return np.asarray(self.elbo[start:])

    def state(self):
        return inference.StepState(len(self.elbo), tuple(self.elbo), schedule=lambda i: self.rate)

    def approximation(self):
        return {"x": np.float64(self.x)}, {}

    def load(self, start):
        self.x, self.elbo = float(start.arrays[0]), list(start.elbo)

    def checkpoint(self):
        return inference.Checkpoint(arrays=[np.asarray(self.x)], elbo=list(self.elbo))


def test_fit_is_a_loop_around_any_stepper(tmp_path):
    ckpt = tmp_path / "p.npz"
    result = fit(Parabola(), dataclasses.replace(CONFIG, iterations=20), checkpoint=ckpt, progress=False)
    assert len(result.elbo) == 20 and result.backend == "numpy" and result.stepper.compiled == 1
    assert result.approximation()[0]["x"] == pytest.approx(3.0 * 0.8**20)
    resumed = fit(Parabola(), CONFIG, checkpoint=ckpt, resume=True, progress=False)
    np.testing.assert_array_equal(resumed.elbo[:20], result.elbo)
    np.testing.assert_allclose(resumed.elbo, -(3.0 * 0.8 ** np.arange(1, 41)) ** 2, rtol=1e-12)
    with pytest.raises(TrainingDiverged, match="ELBO became inf at iteration 1"):
        fit(Parabola(rate=2.0), CONFIG, progress=False)


MAP = dataclasses.replace(CONFIG, method="map")


def test_map_ascends_the_log_posterior_and_is_a_point():
    result = run(MAP)
    assert result.elbo[-10:].mean() > result.elbo[:10].mean()
    means, sds = result.approximation()
    assert set(means) == {"dense_1.W", "dense_1.b", "dense_2.W", "dense_2.b"}
    assert all(not sd.any() for sd in sds.values())


def test_map_records_the_log_posterior_density_of_its_point():
    """The recorded objective is the model's log density (no Jacobian) at the step's point: the prior's
    L2 term, exactly, plus the mini-batch log likelihood scaled to the 200 training digits."""
    with pytensor.config.change_flags(floatX="float32"):
        model = tiny_model()
        stepper = inference.MAPStepper(model, MAP)
        start, _ = stepper.approximation()
        (value,) = stepper.step(1)
        prior = float(model.compile_logp(vars=model.free_RVs, jacobian=False)(start))
    # the likelihood of a random batch scaled by 200 / 20: below 0, above 200 digits at ten times chance
    assert 0 > value - prior > -200 * np.log(10) * 10
    assert prior > 7000  # 6,370 weights under Normal(0, 0.1), near 0: each log density about ln(1 / (0.1 sqrt(2 pi))) = 1.38


def test_map_resumes_from_its_checkpoint(tmp_path):
    ckpt = tmp_path / "m.npz"
    first = run(dataclasses.replace(MAP, iterations=20), checkpoint=ckpt)
    resumed = run(MAP, checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.elbo[:20], first.elbo.astype(np.float64))
    with pytest.raises(CheckpointError, match="other settings"):
        run(CONFIG, checkpoint=ckpt, resume=True)  # an ADVI fit does not continue a MAP checkpoint


def test_map_of_a_hierarchical_prior_is_refused():
    with pytest.raises(ValueError, match="no useful mode"):
        run(MAP, prior=HierarchicalPrior())
