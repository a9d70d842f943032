"""Who is calling: bearer JWTs verified against a JWKS, the roles they carry, and the
local signing key that mints them when no identity provider is in the picture."""
