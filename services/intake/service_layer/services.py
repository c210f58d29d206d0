"""Intake's use cases, one module each, composed into the one service the entrypoints
call: media (``media``), submission (``submission``), search and cursors (``search``),
reporter feedback and "me too" (``feedback``), moderation (``moderation``) and the read
model with its update feed (``read_model``). Shared ports and reading: ``core``."""

from __future__ import annotations

from services.intake.service_layer.feedback import FeedbackCases
from services.intake.service_layer.moderation import ModerationCases
from services.intake.service_layer.read_model import ReadModelCases
from services.intake.service_layer.search import SearchCases
from services.intake.service_layer.submission import SubmissionCases


class IntakeService(SubmissionCases, SearchCases, FeedbackCases, ModerationCases, ReadModelCases):
    """Built once by the composition root (``services.intake.bootstrap``)."""
