"""People in the loop: the clips worth a person's ear (:mod:`.queue`), what reviewers decided
(:mod:`.decisions`) and how the next curation honours it (:mod:`.apply`)."""
