-- Leader posts as HR systems report them (issue 14): the posts, who applied and who was appointed.
-- Person ids only, as in the events: names and e-mail addresses stay in the people vault.
CREATE TABLE vacancies (
    vacancy_id  text        PRIMARY KEY,
    unit        text        NOT NULL,
    profession  text        NOT NULL,
    level       text        NOT NULL,
    opened_on   date        NOT NULL,
    closed_on   date,
    reported_at timestamptz NOT NULL DEFAULT now(),
    CHECK (closed_on IS NULL OR closed_on >= opened_on)
);

CREATE TABLE vacancy_applications (
    vacancy_id  text        NOT NULL REFERENCES vacancies (vacancy_id),
    person_id   text        NOT NULL,
    applied_on  date        NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vacancy_id, person_id)
);
CREATE INDEX vacancy_applications_person ON vacancy_applications (person_id);

CREATE TABLE vacancy_appointments (
    vacancy_id   text        NOT NULL REFERENCES vacancies (vacancy_id),
    person_id    text        NOT NULL,
    appointed_on date        NOT NULL,
    reported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vacancy_id, person_id)
);
CREATE INDEX vacancy_appointments_person ON vacancy_appointments (person_id);
