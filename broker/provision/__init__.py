"""Provisioning: the Kafka topics, SCRAM users and ACLs that follow from the partner registry.

``plan`` builds the desired state (pure), ``diff`` compares it with the cluster's (pure),
``apply`` reads and changes the cluster through confluent-kafka's ``AdminClient``,
``credentials`` handles passwords and ``run`` ties them together. See docs/PROVISIONING.md.
"""
