"""The dashboard's settled volume rollup: one row beside the transactions it counts."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('backoffice', '0001_drop_empty_auditlog_table'),
    ]

    operations = [
        migrations.CreateModel(
            name='VolumeRollup',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ('start', models.DateTimeField(editable=False)),
                ('settled', models.DateTimeField(editable=False)),
                ('days', models.JSONField(default=list, editable=False)),
                ('pending', models.JSONField(default=list, editable=False)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('id', 1)), name='backoffice_volume_rollup_one_row')],
            },
        ),
    ]
