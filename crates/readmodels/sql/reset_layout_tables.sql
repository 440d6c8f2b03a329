-- The layout changed: every layout-dependent row is rewritten from the new layout.
DELETE FROM readmodel.sensor_state;
DELETE FROM readmodel.machine_status;
DELETE FROM readmodel.line_status;
DELETE FROM readmodel.plant_status;
DELETE FROM readmodel.sensors;
DELETE FROM readmodel.machines;
DELETE FROM readmodel.lines;
DELETE FROM readmodel.plant;
