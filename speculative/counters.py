"""What speculative decoding counts (speculative.md section 5), per sample, summed over samples.

A round of 8 active samples adds 8 target calls (one verify pass each, batched into one forward
call); draft_calls counts per-sample draft calls: proposals made for an autoregressive draft, one
per round for a one-call draft. `attempted` counts proposals
actually tested (up to and including the first rejection of a round), `accepted` the accepted ones.
Correction and bonus patches are not proposals. verify_calls_by_k[k] counts per-sample verify calls
with k proposals (the speed model's v(k) terms). adaptive_fallback_rounds counts rounds of the batch
in which adaptive K decoded with K = --spec_k because the measured step costs were impossible.
"""
from dataclasses import dataclass, field

NAN = float("nan")


@dataclass
class SpecCounters:
    forecasts: int = 0
    attempted: int = 0
    accepted: int = 0
    target_calls: int = 0
    draft_calls: int = 0
    patches_emitted: int = 0
    residual_fallbacks: int = 0
    verify_calls_by_k: list = field(default_factory=list)
    adaptive_fallback_rounds: int = 0

    @property
    def acceptance_pct(self):
        return 100.0 * self.accepted / self.attempted if self.attempted else NAN

    @property
    def alpha_estimate(self):
        """Acceptance so far with one pseudo-acceptance, so that adaptive K starts by proposing."""
        return (self.accepted + 1) / (self.attempted + 1)

    @property
    def patches_per_target_call(self):
        return self.patches_emitted / self.target_calls if self.target_calls else NAN

    @property
    def target_calls_per_forecast(self):
        return self.target_calls / self.forecasts if self.forecasts else NAN
