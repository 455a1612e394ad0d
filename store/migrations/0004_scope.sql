-- Who sees what (PRODUCT §8.1): sight follows the journey's current people, not its past ones.
-- A nearest leader sees a journey while they lead it (journey_status.nearest_leader_id); the
-- leader's leader, whom escalations reach, sees it read-only while they hold that place. The
-- current leader's leader is a column beside the current nearest leader, so the one scoping rule
-- (api/deps.py SCOPE) is a condition on journey_status alone, served by these indexes.
ALTER TABLE journey_status ADD COLUMN leaders_leader_id text;

-- Journeys stored before: the leader's leader named by the latest nomination or leader change.
UPDATE journey_status s
   SET leaders_leader_id = (
       SELECT ev.data->>'leaders_leader_id' FROM events ev
        WHERE ev.stream_id = s.stream_id AND ev.event_type IN ('TalentNominated', 'NearestLeaderChanged')
        ORDER BY ev.stream_version DESC LIMIT 1);

CREATE INDEX journey_status_nearest_leader ON journey_status (nearest_leader_id);
CREATE INDEX journey_status_leaders_leader ON journey_status (leaders_leader_id) WHERE leaders_leader_id IS NOT NULL;
