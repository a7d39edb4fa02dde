"""Statistics for verdicts: small pure functions over NumPy arrays.

Nothing here imports the rest of the project, the database, Textual or torch.
"""

from .churn import between_arms, prediction_difference, top1_churn, within_arm
from .effects import default_delta, holm, iqm_difference, prob_improvement, prob_improvement_normal
from .intervals import anytime_interval, bootstrap_interval, mixture_ratio, skew_interval, welch_interval, welch_p_greater
from .power import seeds_needed, settle_probability, welch_power, welch_seeds_needed
from .summary import ArmSummary, interquartile_mean, summarize
from .verdict import Verdict, family_verdicts, verdict, verdict_from_summary

__all__ = [
    "ArmSummary", "Verdict", "anytime_interval", "between_arms", "bootstrap_interval", "default_delta",
    "family_verdicts", "holm", "interquartile_mean", "iqm_difference", "mixture_ratio", "settle_probability", "skew_interval", "prediction_difference",
    "prob_improvement", "prob_improvement_normal", "seeds_needed", "summarize", "top1_churn", "verdict",
    "verdict_from_summary", "welch_interval", "welch_p_greater", "welch_power", "welch_seeds_needed", "within_arm",
]
