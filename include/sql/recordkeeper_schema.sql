-- Recordkeeper (Relius-style; system of record for retirement plans and participants).
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Timestamps are UTC, stored as TIMESTAMP ('YYYY-MM-DD HH:MM:SS' text on SQLite).
-- Dates are calendar dates (DATE, 'YYYY-MM-DD'); money is NUMERIC(12,2), percents NUMERIC(7,3).

CREATE TABLE IF NOT EXISTS rk_plan (
    plan_id                  VARCHAR(20)   PRIMARY KEY,   -- 'P0001'
    plan_name                VARCHAR(200)  NOT NULL,
    external_plan_id         VARCHAR(40)   NOT NULL,      -- the recordkeeper's own plan number
    employer_name            VARCHAR(200)  NOT NULL,
    employer_ein             VARCHAR(10),                 -- 'NN-NNNNNNN'; NULL = missing (blocks iJoin activation)
    pay_frequency_code       CHAR(1)       NOT NULL,      -- W weekly, B biweekly, S semimonthly, M monthly,
                                                          -- V variable (per participant: most frequent in payroll)
    plan_year_start          DATE          NOT NULL,
    updated_at               TIMESTAMP     NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_rk_plan_updated_at ON rk_plan (updated_at);

CREATE TABLE IF NOT EXISTS rk_plan_contact (
    plan_id                  VARCHAR(20)   NOT NULL REFERENCES rk_plan (plan_id),
    contact_type             VARCHAR(30)   NOT NULL,      -- primary_administrator | employer_sponsor
                                                          -- | primary_plan_contact
    name                     VARCHAR(200)  NOT NULL,
    email                    VARCHAR(200),
    phone                    VARCHAR(20),
    PRIMARY KEY (plan_id, contact_type)
);

-- Employer match: tier 1 matches the first contribution_pct of pay at match_pct, tier 2 the next, ...
CREATE TABLE IF NOT EXISTS rk_match_tier (
    plan_id                  VARCHAR(20)   NOT NULL REFERENCES rk_plan (plan_id),
    tier                     INTEGER       NOT NULL,
    contribution_pct         NUMERIC(7,3)  NOT NULL,
    match_pct                NUMERIC(7,3)  NOT NULL,
    PRIMARY KEY (plan_id, tier)
);

-- The plan's fund line-up; a closed fund (is_open = 0) keeps its balances but takes no new money.
CREATE TABLE IF NOT EXISTS rk_fund (
    plan_id                  VARCHAR(20)   NOT NULL REFERENCES rk_plan (plan_id),
    fund_id                  VARCHAR(20)   NOT NULL,      -- 'F001'
    ticker                   VARCHAR(12),                 -- NULL for e.g. a collective trust (blocks activation)
    fund_name                VARCHAR(200)  NOT NULL,
    asset_class              VARCHAR(60)   NOT NULL,
    is_default               SMALLINT      NOT NULL,      -- 1 = the plan's default investment (one per plan)
    is_open                  SMALLINT      NOT NULL,
    sort_order               INTEGER       NOT NULL,
    PRIMARY KEY (plan_id, fund_id)
);

CREATE TABLE IF NOT EXISTS rk_participant (
    plan_id                  VARCHAR(20)   NOT NULL REFERENCES rk_plan (plan_id),
    participant_id           VARCHAR(30)   NOT NULL,      -- 'P0001-000001'
    ssn                      VARCHAR(9)    NOT NULL,      -- 9 digits, no dashes
    first_name               VARCHAR(100)  NOT NULL,
    last_name                VARCHAR(100)  NOT NULL,
    birth_date               DATE          NOT NULL,
    hire_date                DATE          NOT NULL,
    termination_date         DATE,
    status                   CHAR(1)       NOT NULL,      -- A active, T terminated, L leave, R retired
    annual_salary            NUMERIC(12,2),               -- census salary; NULL = fall back (see below)
    computed_compensation    NUMERIC(12,2),               -- computed annual compensation
    prior_year_compensation  NUMERIC(12,2),               -- prior plan year's compensation
    email                    VARCHAR(200),
    updated_at               TIMESTAMP     NOT NULL,
    PRIMARY KEY (plan_id, participant_id)
);
CREATE INDEX IF NOT EXISTS ix_rk_participant_ssn ON rk_participant (plan_id, ssn);
CREATE INDEX IF NOT EXISTS ix_rk_participant_updated_at ON rk_participant (updated_at);

-- Payroll as the recordkeeper received it, by plan and SSN: for a variable ('V') plan a participant's pay
-- frequency is the most frequent pay_frequency_code of the last 3 months.
CREATE TABLE IF NOT EXISTS rk_payroll (
    plan_id                  VARCHAR(20)   NOT NULL REFERENCES rk_plan (plan_id),
    ssn                      VARCHAR(9)    NOT NULL,
    pay_date                 DATE          NOT NULL,
    pay_frequency_code       CHAR(1)       NOT NULL,      -- W, B, S, M
    gross_pay                NUMERIC(12,2) NOT NULL,
    PRIMARY KEY (plan_id, ssn, pay_date)
);

CREATE TABLE IF NOT EXISTS rk_balance (
    plan_id                  VARCHAR(20)   NOT NULL,
    participant_id           VARCHAR(30)   NOT NULL,
    fund_id                  VARCHAR(20)   NOT NULL,
    money_source             VARCHAR(20)   NOT NULL,      -- EE_PRETAX | EE_ROTH | EE_AFTERTAX | ER_MATCH
    balance                  NUMERIC(12,2) NOT NULL,
    as_of                    DATE          NOT NULL,
    PRIMARY KEY (plan_id, participant_id, fund_id, money_source),
    FOREIGN KEY (plan_id, participant_id) REFERENCES rk_participant (plan_id, participant_id)
);

-- Investment election for new money: sums to 100.000 per participant (the seeded data has one exception).
CREATE TABLE IF NOT EXISTS rk_allocation (
    plan_id                  VARCHAR(20)   NOT NULL,
    participant_id           VARCHAR(30)   NOT NULL,
    fund_id                  VARCHAR(20)   NOT NULL,
    pct                      NUMERIC(7,3)  NOT NULL,
    PRIMARY KEY (plan_id, participant_id, fund_id),
    FOREIGN KEY (plan_id, participant_id) REFERENCES rk_participant (plan_id, participant_id)
);

CREATE TABLE IF NOT EXISTS rk_contribution_rate (
    plan_id                  VARCHAR(20)   NOT NULL,
    participant_id           VARCHAR(30)   NOT NULL,
    pretax_pct               NUMERIC(7,3)  NOT NULL,
    roth_pct                 NUMERIC(7,3)  NOT NULL,
    aftertax_pct             NUMERIC(7,3)  NOT NULL,
    effective_date           DATE          NOT NULL,
    PRIMARY KEY (plan_id, participant_id),
    FOREIGN KEY (plan_id, participant_id) REFERENCES rk_participant (plan_id, participant_id)
);

-- The enrollment write-back's idempotency log: the hub inserts the iJoin election id here in the same
-- transaction as the change it applies, so an election is never applied twice.
CREATE TABLE IF NOT EXISTS rk_applied_election (
    election_id              VARCHAR(40)   PRIMARY KEY,
    plan_id                  VARCHAR(20)   NOT NULL,
    participant_id           VARCHAR(30)   NOT NULL,
    kind                     VARCHAR(20)   NOT NULL,      -- contribution_rate | allocation
    applied_at               TIMESTAMP     NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_rk_applied_election_participant ON rk_applied_election (plan_id, participant_id);
