import './zod-setup.js';
import './app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { connect } from './lib/connect.js';

const target = document.getElementById('app');
if (target !== null) mount(App, { target, props: { connection: connect() } });
