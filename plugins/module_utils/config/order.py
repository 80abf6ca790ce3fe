# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guests' dependency order (dependencies and clone sources first); every cycle reported once."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import heapq

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.guests import clone_key, dependency_path, where


def dependency_order(by_id, report, dep_indexes):
    """Topological order over dependencies and clone sources; reports every cycle once.

    A cycle is printed from the guest where the search entered it, and reported at that guest's
    entry (dependencies/<i>, or the clone source) that leads into the rest of the cycle.
    """
    edges = {}
    for gid, guest in by_id.items():
        before = [d for d in guest['dependencies'] if d in by_id and d != gid]
        if guest['clone_from'] in by_id and guest['clone_from'] != gid and guest['clone_from'] not in before:
            before.append(guest['clone_from'])
        edges[gid] = before
    # Cycle detection (iterative DFS, colors).
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    reported = set()
    for start in sorted(edges):
        if color[start] != white:
            continue
        stack = [(start, iter(edges[start]))]
        trail = [start]
        color[start] = grey
        while stack:
            node, children = stack[-1]
            advanced = False
            for child in children:
                if color[child] == grey:
                    cycle = trail[trail.index(child):] + [child]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        text = ' -> '.join(str(c) for c in cycle)
                        guest = by_id[cycle[0]]
                        if cycle[1] in guest['dependencies']:
                            file, path = dependency_path(guest, cycle[1], dep_indexes)
                        else:
                            file, path = where(guest, clone_key(guest))
                        report.error(file, path, 'dependency cycle: %s' % text, 'dependency.cycle')
                elif color[child] == white:
                    color[child] = grey
                    trail.append(child)
                    stack.append((child, iter(edges[child])))
                    advanced = True
                    break
            if not advanced:
                color[node] = black
                trail.pop()
                stack.pop()
    # Kahn's algorithm, smallest ID first among the ready guests.
    indegree = dict((gid, len(before)) for gid, before in edges.items())
    after = dict((gid, []) for gid in edges)
    for gid, before in edges.items():
        for dep in before:
            after[dep].append(gid)
    ready = [gid for gid, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        gid = heapq.heappop(ready)
        order.append(gid)
        for nxt in after[gid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, nxt)
    placed = set(order)
    order.extend(sorted(g for g in edges if g not in placed))  # members of cycles, already reported
    return order
