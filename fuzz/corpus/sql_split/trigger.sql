-- notes; with semicolon
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'a;b');
INSERT INTO notes (body) VALUES ('first; note'), ('it''s');
CREATE TRIGGER notes_upper AFTER INSERT ON notes BEGIN
  UPDATE notes SET body = upper(body) WHERE id = new.id;
END;
INSERT INTO notes (body) VALUES ('shout');
