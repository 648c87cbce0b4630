//! The policy core of purchase-guard: pure functions over plain data. No I/O, no async, no
//! clock reads (time is a parameter). Rule ids (R1..R9) refer to the domain brief.
//!
//! - [`authority`]: the partner acting in a namespace, the authority holder of a customer
//!   (R2, R3), and whether an issuer may act (the admission check).
//! - [`delegation`]: which delegation moves authority to a reseller (R2, R3).
//! - [`effective`]: the verdict on each decision and the customer's effective state (R1, R3).
//! - [`decision`]: the content rules of one decision (R4, R6).
//! - [`impact`]: the R7 impact matrix, as data.
//! - [`classify`]: what a request does to a billable resource (purchase, rename, renew...).
//! - [`admission`]: allow or deny an operation on a customer's billable resource, from the
//!   customer's evaluation.
//! - [`changes`]: may a decision be created, changed or withdrawn (admission of R2..R6).
//! - [`partner`]: whether a partner can act.
//! - [`audit`]: which existing resources are out of line with their customer's state.
//! - [`verification`]: one-time verification codes on restriction operations (R5).

pub mod admission;
pub mod audit;
pub mod authority;
pub mod changes;
pub mod classify;
pub mod decision;
pub mod delegation;
pub mod effective;
pub mod freeze;
pub mod impact;
pub mod model;
pub mod partner;
pub mod verification;

pub use admission::{
    BillableRequest, CUSTOMER_UNRESTRICTED, CustomerState, Judgement, RestrictionSource, Verdict, decide_purchase,
    evaluated_state, judge_freeze, judge_request,
};
pub use authority::{
    AuthorityDenied, AuthorityHolder, IssuerError, NoAuthority, authority_holder, check_issuer_authority, issuer_of,
};
pub use changes::{
    CLEANUP_USERS, DecisionWrite, Withdrawal, WithdrawalAllowed, WithdrawalDenied, WithdrawnFrom, WriteAllowed,
    WriteDenied, check_decision_write, check_withdrawal, counting_decision, is_cleanup_user,
};
pub use classify::{
    BILLING_MODE_LABEL, ClassifyRules, RESTARTED_AT, RequestOperation, billing_mode_of, classify_request,
    classify_scale, classify_update,
};
pub use decision::{ContentError, DecisionContent, check_content};
pub use delegation::{DelegationRejection, active_delegation, evaluate_delegation};
pub use effective::{
    Acceptance, Basis, CustomerEvaluation, DecisionVerdict, Effective, Rejection, evaluate_customer,
    verdict_without_customer,
};
pub use freeze::{
    Desired, FROZEN_ANNOTATION, FROZEN_LABEL, FreezeAction, FrozenRecord, Restore, Settled, SpecWrite, Step, Undo,
    parse_retention, plan, scale_undoes_freeze, undoes_freeze,
};
pub use impact::{BillingMode, ImpactMatrix, MatrixError, ModeImpact, Operation};
pub use model::*;
pub use partner::{PartnerNotReady, partner_readiness};
