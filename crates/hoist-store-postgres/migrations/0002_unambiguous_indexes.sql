-- Indexes whose leading column is the same as another's, and in practice one value (one
-- repository, source 'github'), let a cached generic plan made while the table was small
-- scan every row of that value through the wrong index: looking a release up by its
-- GitHub id read all of the repository's releases, a delivery by its id all deliveries.
-- Leading with the column that tells rows apart leaves the planner one sensible choice.
DROP INDEX releases_by_tag;
CREATE INDEX releases_by_tag ON releases (tag_name, repository);
DROP INDEX deliveries_by_body;
CREATE INDEX deliveries_by_body ON deliveries (body_sha256, source);
DROP INDEX builds_by_ref;
CREATE INDEX builds_by_ref ON builds (git_ref, repository);
