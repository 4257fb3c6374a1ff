{{ properties.greeting }} to {{ container.name }} ({{ trigger }}){% if config_get("user.tier", "") == "gold" %} gold{% endif %}
