# -*- coding: utf-8 -*-
"""Handler names (and listen topics) are unique across the collection's roles.

Playbooks include several roles in one play (create.yml and sync.yml run each guest's roles in a free-strategy play),
and a notification goes to every handler of the play with that name or topic, whichever role defined it: two roles
with a handler called "Restart the certificate watch" would restart each other's units, on hosts where one of them
does not even exist."""

import glob
import os

import yaml

from phoenix_testlib import REPO


def handler_topics():
    topics = {}
    for path in sorted(glob.glob(os.path.join(REPO, 'roles', '*', 'handlers', 'main.yml'))):
        role = path.split(os.sep)[-3]
        with open(path) as handle:
            for handler in yaml.safe_load(handle) or []:
                listen = handler.get('listen', [])
                for topic in [handler['name']] + ([listen] if isinstance(listen, str) else list(listen)):
                    topics.setdefault(topic, set()).add(role)
    return topics


def test_no_two_roles_share_a_handler_name_or_topic():
    topics = handler_topics()
    assert topics, 'no handlers found'
    shared = {topic: sorted(roles) for topic, roles in topics.items() if len(roles) > 1}
    assert not shared, shared


def test_every_notification_names_a_handler_of_its_own_role():
    topics = handler_topics()
    missing = []
    for path in sorted(glob.glob(os.path.join(REPO, 'roles', '*', 'tasks', '*.yml'))):
        role = path.split(os.sep)[-3]
        with open(path) as handle:
            text = yaml.safe_load(handle) or []
        stack = list(text)
        while stack:
            task = stack.pop()
            if not isinstance(task, dict):
                continue
            for key in ('block', 'rescue', 'always'):
                stack.extend(task.get(key, []))
            notify = task.get('notify', [])
            for name in [notify] if isinstance(notify, str) else notify:
                if '{{' in name:
                    continue            # a computed list (checked where it is built)
                if role not in topics.get(name, set()):
                    missing.append('%s: %s notifies %r' % (role, task.get('name'), name))
    assert not missing, missing
