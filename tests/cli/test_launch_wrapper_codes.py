"""``aiida-mlfail launch`` fills the code of a restart wrapper exposed by role (``<role>.job.code``) by its role."""

from aiida_mlfail.cli import launch as launch_module
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlfail.workflows.gap import GapWorkChain


def test_job_codes_of_the_gap_roles_are_filled_by_role(gap_fit_code, quip_code):
    inputs = {}
    filled = launch_module.fill_default_codes(inputs, GapWorkChain.spec().inputs, 'mlfail.gap', 'localhost')
    assert sorted(filled) == ['fit.job.code: gap_fit@localhost', 'predict.job.code: quip@localhost']
    assert inputs['fit']['job']['code'].uuid == gap_fit_code.uuid
    assert inputs['predict']['job']['code'].uuid == quip_code.uuid


def test_job_codes_of_the_active_learner_are_filled_by_role(gap_fit_code, quip_code, explore_code):
    inputs = {}
    filled = launch_module.fill_default_codes(inputs, ActiveLearningWorkChain.spec().inputs,
                                              'mlfail.active_learning', 'localhost')
    assert {'gap.fit.job.code: gap_fit@localhost', 'gap.predict.job.code: quip@localhost',
            'explore.job.code: explore@localhost', 'predict.job.code: quip@localhost'} <= set(filled)
    assert inputs['explore']['job']['code'].uuid == explore_code.uuid
    assert inputs['gap']['predict']['job']['code'].uuid == quip_code.uuid
