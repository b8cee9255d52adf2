-- HCM (system of record for demographics). Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Timestamps are UTC, stored as TIMESTAMP ('YYYY-MM-DD HH:MM:SS' text on SQLite).
-- Dates are calendar dates (DATE, 'YYYY-MM-DD'); money is NUMERIC(12,2).

CREATE TABLE IF NOT EXISTS hcm_person (
    person_number            VARCHAR(20)  PRIMARY KEY,
    first_name               VARCHAR(100) NOT NULL,
    middle_name              VARCHAR(100),
    last_name                VARCHAR(100) NOT NULL,
    ssn                      VARCHAR(11),          -- 9 digits, no dashes; may be invalid (the export checks it)
    birth_date               DATE,
    gender_code              VARCHAR(10),          -- xref: gender.csv
    marital_status_code      VARCHAR(10),          -- xref: marital_status.csv
    address_1                VARCHAR(200),
    address_2                VARCHAR(200),
    city                     VARCHAR(100),
    state                    VARCHAR(2),
    zip_code                 VARCHAR(10),
    country                  VARCHAR(3),
    home_phone               VARCHAR(20),
    work_email               VARCHAR(200),
    plansource_subscriber_id VARCHAR(40),          -- PlanSource's id as the HCM holds it (NULL = never exported)
    plansource_username      VARCHAR(100),         -- PlanSource user_name as the HCM holds it
    updated_at               TIMESTAMP    NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_hcm_person_updated_at ON hcm_person (updated_at);

-- One row per employment (EIN) of a person; exactly one is primary.
CREATE TABLE IF NOT EXISTS hcm_employment (
    person_number            VARCHAR(20)  NOT NULL REFERENCES hcm_person (person_number),
    ein                      VARCHAR(10)  NOT NULL,  -- employer EIN, 'NN-NNNNNNN'
    is_primary               SMALLINT     NOT NULL,  -- 1 = primary EIN (only this one is exported)
    employee_status_code     VARCHAR(10)  NOT NULL,  -- xref: employee_status.csv (A, L, T, R, ...)
    employment_type_code     VARCHAR(10)  NOT NULL,  -- xref: employment_type.csv
    pay_group_code           VARCHAR(20)  NOT NULL,  -- xref: pay_group.csv
    pay_type_code            VARCHAR(10)  NOT NULL,  -- xref: pay_type.csv
    union_code               VARCHAR(20),            -- xref: union_code.csv (NULL = not in a union)
    hire_date                DATE         NOT NULL,  -- latest hire (rehire) date
    original_hire_date       DATE         NOT NULL,
    termination_date         DATE,
    termination_reason_code  VARCHAR(20),            -- xref: termination_reason.csv
    annual_salary            NUMERIC(12, 2),
    job_title                VARCHAR(100),
    location                 VARCHAR(100),
    division                 VARCHAR(100),
    updated_at               TIMESTAMP    NOT NULL,
    PRIMARY KEY (person_number, ein)
);
CREATE INDEX IF NOT EXISTS ix_hcm_employment_updated_at ON hcm_employment (updated_at);
CREATE INDEX IF NOT EXISTS ix_hcm_employment_primary ON hcm_employment (is_primary, person_number);
-- The circuit breaker's population (primary employees by status, every run): an index-only count.
CREATE INDEX IF NOT EXISTS ix_hcm_employment_status ON hcm_employment (is_primary, employee_status_code);

-- Payroll deductions loaded from PlanSource by plansource_deductions_import.
-- One row per (person, HCM deduction code, effective date): a change of amount is a new effective-dated
-- row; an ended coverage sets end_date on its row (history is never deleted).
CREATE TABLE IF NOT EXISTS hcm_payroll_deduction (
    person_number            VARCHAR(20)    NOT NULL,
    deduction_code           VARCHAR(20)    NOT NULL,  -- HCM code, via xref deduction_code.csv
    effective_date           DATE           NOT NULL,  -- PlanSource change_effective_date
    end_date                 DATE,                     -- PlanSource termination_date (NULL = open)
    employee_amount          NUMERIC(12, 2) NOT NULL,  -- per pay period (subscriber_premium)
    employer_amount          NUMERIC(12, 2) NOT NULL,  -- per pay period (org_premium)
    pretax_amount            NUMERIC(12, 2) NOT NULL,
    posttax_amount           NUMERIC(12, 2) NOT NULL,
    coverage_level           VARCHAR(60),
    benefit_name             VARCHAR(120),
    plan_year_start          DATE           NOT NULL,  -- first day of the plan year
    plansource_coverage_id   VARCHAR(40)    NOT NULL,
    source_updated_at        TIMESTAMP,
    loaded_at                TIMESTAMP      NOT NULL,
    load_run_id              VARCHAR(250)   NOT NULL,
    PRIMARY KEY (person_number, deduction_code, effective_date)
);
