-- What a façade keeps beside a resource that the native model has no member for (SageMaker's PrimaryContainer,
-- ExecutionRoleArn, InstanceType, ...). `resource_created_at` ties a document to one life of its resource: a
-- resource deleted and created again under the same name does not inherit the old document.
CREATE TABLE facade_documents (
    facade TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    resource_created_at TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (facade, kind, name)
) STRICT;
