"""Evaluation of the whole product on real video (not training code)."""
