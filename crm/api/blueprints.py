"""The API blueprints that more than one resource module routes onto; each blueprint is an OpenAPI tag."""

from crm.api import make_blueprint

# A client generated from the OpenAPI document groups its operations by tag, so these tags stay as published even
# where one spans several resources: each resource module puts an operation on the blueprint of the tag it has.
reads = make_blueprint("api", "Organizations, issue areas, letters and signatures")
organization_writes = make_blueprint("api_organizations", "Creating and changing organizations and contacts")
letter_writes = make_blueprint("api_letters",
                               "Letters, signatures, sign-on review, signatory import, merging organizations")
